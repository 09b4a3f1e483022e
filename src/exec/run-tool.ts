import {ImagetrustError} from '../lib/errors.js'

/** The programs imagetrust runs. Everything external goes through runTool(). */
export type Tool = 'podman' | 'skopeo' | 'buildah' | 'crictl' | 'crio' | 'gpg' | 'systemctl'

export interface ToolResult {
  command: string
  exitCode: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Resolve even when the program exits non-zero (callers classify the failure). */
  allowFailure?: boolean
  env?: Record<string, string | undefined>
  input?: string
  timeoutMs?: number
}

/** Thrown when a program is missing, times out, or fails and allowFailure is off. */
export class ToolError extends ImagetrustError {
  readonly result?: ToolResult

  constructor(message: string, result?: ToolResult, cause?: unknown) {
    super(message, {cause})
    this.name = 'ToolError'
    this.result = result
  }
}

/** The one place that turns a child process outcome into an error message. */
export function describeFailure(result: ToolResult): string {
  const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n  ')
  return `${result.command} exited with code ${result.exitCode}${detail ? `:\n  ${detail}` : ''}`
}

export async function runTool(tool: Tool | string, args: string[], options: RunOptions = {}): Promise<ToolResult> {
  const {execa} = await import('execa')
  const command = [tool, ...args].join(' ')
  let outcome
  try {
    outcome = await execa(tool, args, {
      reject: false,
      env: options.env,
      input: options.input,
      timeout: options.timeoutMs ?? 120_000,
      stdin: options.input === undefined ? 'ignore' : undefined,
    })
  } catch (error) {
    throw new ToolError(`could not run ${command}: ${(error as Error).message}`, undefined, error)
  }

  if ((outcome as {code?: string}).code === 'ENOENT') {
    throw new ToolError(`${tool} is not installed (not found on PATH)`)
  }

  if (outcome.timedOut) {
    throw new ToolError(`${command} timed out after ${options.timeoutMs ?? 120_000} ms`)
  }

  const result: ToolResult = {
    command,
    exitCode: outcome.exitCode ?? -1,
    stdout: String(outcome.stdout ?? ''),
    stderr: String(outcome.stderr ?? ''),
  }
  if (result.exitCode !== 0 && !options.allowFailure) throw new ToolError(describeFailure(result), result)
  return result
}

/**
 * Progress for long steps (test pulls, key fetches, registry probes): a
 * spinner on a terminal, one plain line otherwise. Always on stderr, so
 * --json output on stdout stays clean.
 */
export interface Progress {
  done(result?: string): void
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

export function startProgress(label: string, options: {quiet?: boolean; stream?: NodeJS.WriteStream} = {}): Progress {
  const stream = options.stream ?? process.stderr
  if (options.quiet) return {done() {}}
  if (!stream.isTTY) {
    stream.write(`${label}...\n`)
    return {done() {}}
  }

  let frame = 0
  const draw = () => stream.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label}`)
  draw()
  const timer = setInterval(draw, 100)
  timer.unref()
  return {
    done(result) {
      clearInterval(timer)
      stream.write(`\r\u001B[2K${result ? `${label}: ${result}` : label}\n`)
    },
  }
}

/** Runs a step under a progress indicator. */
export async function withProgress<T>(label: string, work: () => Promise<T>, options: {quiet?: boolean; describe?: (value: T) => string} = {}): Promise<T> {
  const progress = startProgress(label, options)
  try {
    const value = await work()
    progress.done(options.describe?.(value) ?? 'done')
    return value
  } catch (error) {
    progress.done('failed')
    throw error
  }
}

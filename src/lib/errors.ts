/** Where in an input an error was found. Every parse error carries one. */
export interface Location {
  file: string
  line?: number
  column?: number
  /** JSON path (`$.transports.docker["a.example.com"][0]`) or YAML key path. */
  path?: string
}

/**
 * The location of a trust-file entry whose line is read only if an error is
 * made with it: finding lines is the slow part of reading a large trust file.
 */
export function locationOf(file: string, entry: {readonly line: number}): Location {
  return {
    file,
    get line() {
      return entry.line
    },
  }
}

export function formatLocation(loc: Location): string {
  let out = loc.file
  if (loc.line !== undefined) out += `:${loc.line}`
  if (loc.line !== undefined && loc.column !== undefined) out += `:${loc.column}`
  if (loc.path) out += ` (${loc.path})`
  return out
}

/**
 * Exit codes a script can rely on (docs/json-output.md). 3 and 4 are verify's
 * (src/verify/verify.ts VERIFY_EXIT); usage is sysexits.h's EX_USAGE, so a
 * mistyped flag is never mistaken for drift.
 */
export const EXIT = {ok: 0, error: 1, drift: 2, notEnforced: 3, inconclusive: 4, usage: 64} as const

/** An error meant for the user: a message, an optional location, an exit code. */
export class ImagetrustError extends Error {
  readonly location?: Location
  readonly exitCode: number
  readonly hint?: string
  /** The message without its location prefix. */
  readonly reason: string

  constructor(message: string, options: {location?: Location; exitCode?: number; hint?: string; cause?: unknown} = {}) {
    super(options.location ? `${formatLocation(options.location)}: ${message}` : message, {cause: options.cause})
    this.name = 'ImagetrustError'
    this.reason = message
    this.location = options.location
    this.exitCode = options.exitCode ?? EXIT.error
    this.hint = options.hint
  }
}

/** Raised by strict parsers; same shape, distinct so callers can tell input errors apart. */
export class ParseError extends ImagetrustError {
  constructor(message: string, location: Location) {
    super(message, {location})
    this.name = 'ParseError'
  }
}

/** The one shape every error takes under --json (schema/error.schema.json). */
export interface ErrorJson {
  error: {
    message: string
    location?: Location & {text: string}
    hint?: string
    exitCode: number
  }
}

export function errorJson(error: ImagetrustError): ErrorJson {
  return {
    error: {
      message: error.message,
      ...(error.location ? {location: {...error.location, text: formatLocation(error.location)}} : {}),
      ...(error.hint ? {hint: error.hint} : {}),
      exitCode: error.exitCode,
    },
  }
}

/** `--json` given as an option (not after `--`). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--')
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json')
}

type Thrown = Error & {
  code?: unknown
  syscall?: unknown
  path?: unknown
  dest?: unknown
  oclif?: {exit?: number}
  parse?: unknown
  args?: Array<{name?: string}>
  suggestions?: string[]
}

/** oclif's way to stop a command with a code (this.exit()): not an error to report. */
export function isExitRequest(error: unknown): error is Error & {oclif: {exit: number}} {
  return error instanceof Error && (error as Thrown).code === 'EEXIT' && typeof (error as Thrown).oclif?.exit === 'number'
}

const PERMISSION_HINT = 'run as root, or use --user to manage your own files'

/** What a system error code means, in words, and what to do about it. */
const SYSTEM_ERRORS: Record<string, {what: string; hint?: string}> = {
  EACCES: {what: 'permission denied', hint: PERMISSION_HINT},
  EPERM: {what: 'permission denied', hint: PERMISSION_HINT},
  EROFS: {what: 'read-only file system', hint: 'the file system is mounted read-only: remount it read-write, or use --root DIR to work on a copy'},
  ENOSPC: {what: 'no space left on device', hint: 'free some space on the file system that holds it'},
  EDQUOT: {what: 'disk quota exceeded', hint: 'free some space, or raise the quota'},
  ENOENT: {what: 'no such file or directory'},
  ELOOP: {what: 'too many levels of symbolic links', hint: 'a symbolic link loop, or a symbolic link where imagetrust does not follow one'},
  ENOTDIR: {what: 'not a directory', hint: 'a component of the path is a file, not a directory'},
  EISDIR: {what: 'is a directory', hint: 'a file was expected'},
  EEXIST: {what: 'file exists'},
  ENOTEMPTY: {what: 'directory not empty'},
  EBUSY: {what: 'device or resource busy', hint: 'is it a mount point? A bind-mounted file cannot be replaced by rename'},
  ETXTBSY: {what: 'text file busy'},
  EXDEV: {what: 'cross-device link'},
  ENAMETOOLONG: {what: 'file name too long'},
  EMFILE: {what: 'too many open files'},
  ENFILE: {what: 'too many open files in the system'},
  EIO: {what: 'input/output error', hint: 'check the disk and the kernel log'},
}

function systemError(error: Thrown): ImagetrustError | undefined {
  if (typeof error.code !== 'string' || typeof error.syscall !== 'string') return undefined
  const known = SYSTEM_ERRORS[error.code]
  const file = typeof error.path === 'string' ? error.path : undefined
  if (error.syscall.startsWith('spawn')) {
    const program = file ?? error.syscall.slice('spawn'.length).trim()
    if (error.code === 'ENOENT') return new ImagetrustError(`program not found: ${program}`, {hint: 'install it, or check PATH', cause: error})
    return new ImagetrustError(`cannot run ${program}: ${known?.what ?? error.code}`, {hint: known?.hint, cause: error})
  }

  if (!known) return new ImagetrustError(error.message, {cause: error})
  const target = file ? `: ${file}${typeof error.dest === 'string' ? ` (to ${error.dest})` : ''}` : ` (${error.syscall})`
  return new ImagetrustError(`${known.what}${target}`, {hint: known.hint, cause: error})
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001B\[[0-9;]*m/g

/** oclif's usage errors: a parse error, a bad flag value, a CLIError with oclif's default exit 2 (unknown command). */
function isUsageError(error: Thrown): boolean {
  if (error.code === 'EEXIT') return false
  return error.parse !== undefined || /^Parsing --\S+/.test(error.message) || error.oclif?.exit === 2
}

/** The command a typo most likely meant: edit distance at most 2, or a unique prefix. */
function closestCommand(id: string, commands: readonly string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    let row = Array.from({length: b.length + 1}, (_, i) => i)
    for (let i = 1; i <= a.length; i++) {
      const next = [i]
      for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      row = next
    }

    return row[b.length]
  }

  const ranked = commands.map((c) => ({c, d: distance(id, c)})).sort((x, y) => x.d - y.d)
  if (ranked.length > 0 && ranked[0].d <= 2 && ranked[0].d < id.length) return ranked[0].c
  const prefixed = commands.filter((c) => c.startsWith(id))
  return prefixed.length === 1 ? prefixed[0] : undefined
}

/** oclif's multi-line usage message, on one line. */
function usageMessage(error: Thrown): string {
  const lines = error.message
    .replace(ANSI, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && line !== 'See more help with --help')
  const first = (lines.shift() ?? 'usage error').replace(/^command (\S+) not found$/, (_, id: string) => `command ${id.replaceAll(':', ' ')} not found`)
  if (/^Missing \d+ required args?/.test(first) && Array.isArray(error.args)) {
    const names = error.args.map((arg) => arg.name).filter(Boolean)
    return names.length > 0 ? `${first.replace(/:$/, '')}: ${names.join(', ')}` : first.replace(/:$/, '')
  }

  return lines.length > 0 ? `${first.replace(/:$/, '')}: ${lines.join('; ')}` : first
}

/**
 * Anything thrown, as an error for the user: ours as is, oclif's usage errors
 * with exit 64, system errors (EACCES, EROFS, ...) as a plain message naming
 * the path, anything else with its message and exit 1.
 */
export function toImagetrustError(error: unknown, context: {commandId?: string; commands?: readonly string[]} = {}): ImagetrustError {
  if (error instanceof ImagetrustError) {
    // Ours, wrapping a system error ("cannot write X: EROFS"), gets that error's advice.
    const code = (error.cause as Thrown | undefined)?.code
    const hint = !error.hint && typeof code === 'string' ? SYSTEM_ERRORS[code]?.hint : undefined
    return hint ? new ImagetrustError(error.reason, {location: error.location, exitCode: error.exitCode, hint, cause: error.cause}) : error
  }

  if (!(error instanceof Error)) return new ImagetrustError(String(error), {cause: error})
  const thrown = error as Thrown
  if (isUsageError(thrown)) {
    const command = context.commandId ? `imagetrust ${context.commandId.replaceAll(':', ' ')} --help` : 'imagetrust --help'
    const unknown = /^command (\S+) not found$/.exec(thrown.message)
    const closest = unknown && context.commands ? closestCommand(unknown[1], context.commands) : undefined
    const hint = thrown.suggestions?.length
      ? thrown.suggestions.join('; ')
      : closest
        ? `did you mean 'imagetrust ${closest.replaceAll(':', ' ')}'? See 'imagetrust --help' for the commands`
        : context.commandId
        ? `see '${command}'`
        : `see '${command}' for the commands`
    return new ImagetrustError(usageMessage(thrown), {exitCode: EXIT.usage, hint, cause: error})
  }

  return systemError(thrown) ?? new ImagetrustError(error.message || error.name, {cause: error})
}

/**
 * Reports an error the one documented way: with --json the small object on
 * stdout, otherwise `imagetrust: error:` and `hint:` on stderr; a stack trace
 * only when DEBUG is set. Sets and returns the exit code.
 */
export function reportError(error: unknown, options: {json: boolean; commandId?: string; commands?: readonly string[]}): number {
  const reported = toImagetrustError(error, options)
  process.exitCode = reported.exitCode
  if (options.json) process.stdout.write(`${JSON.stringify(errorJson(reported), null, 2)}\n`)
  else process.stderr.write(`imagetrust: error: ${reported.message}\n${reported.hint ? `hint: ${reported.hint}\n` : ''}`)
  if (process.env.DEBUG) {
    const original = reported.cause instanceof Error ? reported.cause : reported
    process.stderr.write(`${original.stack ?? original.message}\n`)
  }

  return reported.exitCode
}

/** Where in an input an error was found. Every parse error carries one. */
export interface Location {
  file: string
  line?: number
  column?: number
  /** JSON path (`$.transports.docker["a.example.com"][0]`) or YAML key path. */
  path?: string
}

export function formatLocation(loc: Location): string {
  let out = loc.file
  if (loc.line !== undefined) out += `:${loc.line}`
  if (loc.line !== undefined && loc.column !== undefined) out += `:${loc.column}`
  if (loc.path) out += ` (${loc.path})`
  return out
}

/** Exit codes a script can rely on. */
export const EXIT = {ok: 0, error: 1, drift: 2} as const

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

import type {Location} from '../lib/errors.js'
import type {YamlSource} from './yaml-source.js'

/** Shared by the trust-file validators: name rules and a collector of located problems. */
export const KEY_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/
export const FINGERPRINT = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/

export type Obj = Record<string, unknown>

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export class Collector {
  readonly problems: Array<{location: Location; message: string}> = []

  constructor(private readonly source: YamlSource) {}

  add(pathParts: Array<string | number>, message: string): void {
    this.problems.push({location: {file: this.source.file, line: this.source.lineOf(pathParts), path: pathParts.join('.') || undefined}, message})
  }

  line(pathParts: Array<string | number>): number {
    return this.source.lineOf(pathParts) ?? 1
  }

  /**
   * `value` with a `line` found only when read (an error or a warning about
   * it): locating is the slow part of reading a large trust file.
   */
  withLine<T extends object>(value: T, pathParts: Array<string | number>): T & {line: number} {
    let line: number | undefined
    return Object.defineProperty(value, 'line', {enumerable: true, configurable: true, get: () => (line ??= this.line(pathParts))}) as T & {line: number}
  }

  unknownKeys(value: Obj, allowed: string[], at: Array<string | number>): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.add([...at, key], `unknown key "${key}" (allowed: ${allowed.join(', ')})`)
    }
  }

  string(value: Obj, key: string, at: Array<string | number>): string | undefined {
    const v = value[key]
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'string' || v === '') {
      this.add([...at, key], `${key} must be a non-empty string`)
      return undefined
    }

    return v
  }
}


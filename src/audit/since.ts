import {EXIT, ImagetrustError} from '../lib/errors.js'

/**
 * audit --since: a window ending now, given as a duration (90m, 1h, 7d, 2w)
 * or an RFC 3339 time (2026-12-01T00:00:00Z). Times are UTC unless an offset
 * is given. A bad value is a usage error (exit 64).
 */
export interface Window {
  since: Date
  until: Date
  /** For the summary: "in the last 7 days", or "since 2026-12-01T00:00:00.000Z". */
  phrase: string
}

const UNITS: Record<string, [number, string]> = {s: [1000, 'second'], m: [60_000, 'minute'], h: [3_600_000, 'hour'], d: [86_400_000, 'day'], w: [604_800_000, 'week']}
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/** Date() rolls 2026-02-30 over into March; a real calendar date and clock time are required. */
function validFields(m: RegExpExecArray): boolean {
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number)
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate()
  return month >= 1 && month <= 12 && day >= 1 && day <= days && hour < 24 && minute < 60 && second < 60
}

function usage(value: string, why: string): ImagetrustError {
  return new ImagetrustError(`--since "${value}": ${why}`, {
    exitCode: EXIT.usage,
    hint: 'give a duration (30m, 1h, 7d, 2w) or an RFC 3339 time (2026-12-01T00:00:00Z)',
  })
}

export function parseSince(value: string, now: Date): Window {
  const duration = /^(\d{1,6})([smhdw])$/.exec(value.trim())
  if (duration) {
    const [ms, unit] = UNITS[duration[2]]
    const count = Number(duration[1])
    if (count === 0) throw usage(value, 'the window is empty')
    return {since: new Date(now.getTime() - count * ms), until: now, phrase: `in the last ${count === 1 ? unit : `${count} ${unit}s`}`}
  }

  const time = RFC3339.exec(value.trim())
  if (!time) throw usage(value, 'not a duration or an RFC 3339 time')
  const since = new Date(value.trim().replace(' ', 'T'))
  if (!validFields(time) || Number.isNaN(since.getTime())) throw usage(value, 'not a valid date and time')
  if (since.getTime() >= now.getTime()) throw usage(value, `it is not in the past (now is ${now.toISOString()})`)
  return {since, until: now, phrase: `since ${since.toISOString()}`}
}

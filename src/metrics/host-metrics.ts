import type {AuditReport} from '../audit/audit.js'
import type {LoadedKey} from '../keys/types.js'
import type {DriftEntry} from '../plan/drift.js'
import {type Family, seconds} from './exposition.js'

/**
 * The metric families check and audit write. Their names are disjoint, so both
 * files can sit in one textfile directory without duplicate series.
 */
export interface CheckFacts {
  drift: DriftEntry[]
  keys: Array<Pick<LoadedKey, 'name' | 'keys'>>
  lastApply: string | null
  now: Date
}

const gauge = (name: string, help: string, samples: Family['samples']): Family => ({name, help, type: 'gauge', samples})

/** Drifted places per reason, whatever reasons the drift carries (a new reason shows up by itself). */
function driftByReason(drift: DriftEntry[]): Family['samples'] {
  const counts = new Map<string, number>()
  for (const entry of drift) for (const reason of new Set(entry.reasons)) counts.set(reason, (counts.get(reason) ?? 0) + 1)
  return [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([reason, value]) => ({labels: {reason}, value}))
}

function keyExpiries(keys: CheckFacts['keys']): Family['samples'] {
  return keys.flatMap((key) => key.keys.filter((k) => k.expires).map((k) => ({labels: {key: key.name, fingerprint: k.fingerprint}, value: seconds(k.expires!)})))
}

function checkTimes(lastApply: string | null, now: Date): Family[] {
  return [
    gauge('imagetrust_last_apply_timestamp_seconds', 'When apply last ran (Unix time); absent if it never ran.', lastApply ? [{value: seconds(lastApply)}] : []),
    gauge('imagetrust_last_check_timestamp_seconds', 'When this check ran (Unix time).', [{value: seconds(now)}]),
  ]
}

export function checkMetrics(facts: CheckFacts): Family[] {
  return [
    gauge('imagetrust_check_errors', '1 when the check itself failed (unreadable trust file, bad key...), so the other metrics are absent.', [{value: 0}]),
    gauge('imagetrust_in_sync', '1 when the host matches the trust file, 0 when it drifted.', [{value: facts.drift.length === 0 ? 1 : 0}]),
    gauge('imagetrust_drift_files', 'Places (files, keys, foreign scopes) that drifted, by reason.', driftByReason(facts.drift)),
    gauge('imagetrust_overridden_scopes', "Foreign policy.json scopes that override the trust file's rule for some images.", [
      {value: facts.drift.filter((d) => d.reasons.includes('overridden')).length},
    ]),
    gauge('imagetrust_key_expiry_timestamp_seconds', 'When each trusted key expires (Unix time); keys that never expire are absent.', keyExpiries(facts.keys)),
    ...checkTimes(facts.lastApply, facts.now),
  ]
}

/** What a failed check can still say: that it failed, and when. */
export function checkErrorMetrics(now: Date, lastApply: string | null = null): Family[] {
  return [
    gauge('imagetrust_check_errors', '1 when the check itself failed (unreadable trust file, bad key...), so the other metrics are absent.', [{value: 1}]),
    ...checkTimes(lastApply, now),
  ]
}

const OUTCOMES = ['accepted', 'refused', 'unknown'] as const

export function auditMetrics(report: AuditReport | null, now: Date): Family[] {
  const families = [
    gauge('imagetrust_audit_errors', '1 when the audit itself failed, so the other audit metrics are absent.', [{value: report ? 0 : 1}]),
    gauge('imagetrust_last_audit_timestamp_seconds', 'When this audit ran (Unix time).', [{value: seconds(now)}]),
  ]
  if (!report) return families
  families.push(
    gauge('imagetrust_audit_images', 'Local image names by the verdict a fresh pull would get.', OUTCOMES.map((outcome) => ({labels: {outcome}, value: report.summary[outcome]}))),
    gauge('imagetrust_audit_running_refused', "Running containers' images that a fresh pull would refuse.", [{value: report.summary.runningRefused}]),
    gauge('imagetrust_audit_running_unknown', "Running containers' images whose verdict cannot be known.", [{value: report.summary.runningUnknown}]),
  )
  if (report.pulled) {
    const {summary} = report.pulled
    families.push(gauge('imagetrust_audit_pulled_images', 'References pulled in the --since window, by the verdict the judged policy gives them.', OUTCOMES.map((outcome) => ({labels: {outcome}, value: summary[outcome]}))))
  }

  return families
}

import type {Policy} from '../policy/types.js'
import type {Pull, readPullHistory} from './history.js'
import type {Outcome, PolicyVerdict} from './judge.js'
import type {PolicyView} from './policy-view.js'
import type {Window} from './since.js'
import type {LocalImage} from './storage.js'

/** One reference the host pulled in the window, reported once per engine. */
export interface PulledEntry extends PolicyVerdict {
  reference: string
  source: Pull['source']
  pulls: number
  lastPulled: string
  digest: string | null
}

export interface PulledReport {
  since: string
  until: string
  /** "in the last 7 days" or "since TIME", as the summary line says it. */
  window: string
  /** Refused first, then unknown, then accepted; most pulled first in each. */
  images: PulledEntry[]
  summary: {references: number; pulls: number; accepted: number; refused: number; unknown: number}
}

/** A verdict on one name, as audit judges local images (audit.ts judgeName). */
export interface Judged extends PolicyVerdict {
  reference: string
  digest: string | null
}

export type JudgeName = ((policy: {file: string; policy: Policy}, name: string, repoDigests: string[]) => Promise<Judged>) & {sigstoreJudged(): boolean}

const ORDER: Record<Outcome, number> = {refused: 0, unknown: 1, accepted: 2}

function group(pulls: Pull[]): Array<{source: Pull['source']; reference: string; pulls: number; last: Pull}> {
  const groups = new Map<string, {source: Pull['source']; reference: string; pulls: number; last: Pull}>()
  for (const pull of pulls) {
    const key = `${pull.source} ${pull.reference}`
    const seen = groups.get(key)
    if (!seen) groups.set(key, {source: pull.source, reference: pull.reference, pulls: 1, last: pull})
    else {
      seen.pulls++
      if (pull.time > seen.last.time) seen.last = pull
    }
  }

  return [...groups.values()]
}

/** The repo digests local storage holds for the image a pull produced, so the digest judged is the one pulled. */
function repoDigestsOf(pull: Pull, images: LocalImage[]): string[] {
  if (!pull.image) return []
  if (pull.image.includes('@')) return [pull.image]
  const id = pull.image.replace(/^sha256:/, '')
  return images.find((i) => i.id === id || (id.length >= 12 && i.id.startsWith(id)))?.repoDigests ?? []
}

export async function judgePulls(
  window: Window,
  history: Awaited<ReturnType<typeof readPullHistory>>,
  images: LocalImage[],
  judge: JudgeName,
  view: PolicyView,
): Promise<{report: PulledReport; warnings: string[]}> {
  const entries: PulledEntry[] = []
  for (const g of group(history.pulls)) {
    const policy = g.source === 'crio' ? ((await view.crio()) ?? view.podman) : view.podman
    const verdict = await judge(policy, g.reference, repoDigestsOf(g.last, images))
    entries.push({...verdict, source: g.source, pulls: g.pulls, lastPulled: g.last.time.toISOString(), reference: verdict.reference})
  }

  entries.sort((a, b) => ORDER[a.outcome] - ORDER[b.outcome] || b.pulls - a.pulls || a.reference.localeCompare(b.reference))
  const count = (outcome: Outcome) => entries.filter((e) => e.outcome === outcome).length
  const summary = {references: entries.length, pulls: history.pulls.length, accepted: count('accepted'), refused: count('refused'), unknown: count('unknown')}
  return {report: {since: window.since.toISOString(), until: window.until.toISOString(), window: window.phrase, images: entries, summary}, warnings: history.warnings}
}

export function renderPulled(report: PulledReport, policySource: string): string[] {
  const lines = [`Pulled ${report.window} (${report.summary.pulls} pull(s)), judged against the ${policySource} policy:`]
  const titles: Record<Outcome, string> = {refused: 'WOULD HAVE BEEN REFUSED', unknown: 'CANNOT BE KNOWN', accepted: 'would have been accepted'}
  for (const outcome of ['refused', 'unknown', 'accepted'] as const) {
    const group = report.images.filter((i) => i.outcome === outcome)
    if (group.length === 0) continue
    lines.push(`${titles[outcome]} (${group.length}):`)
    for (const i of group) {
      lines.push(`  ${i.reference} [${i.source}] pulled ${i.pulls} time(s), last ${i.lastPulled}`)
      lines.push(`      ${i.reason}`)
    }
  }

  const s = report.summary
  const window = report.window[0].toUpperCase() + report.window.slice(1)
  lines.push(`${window}, ${s.refused} of ${s.references} pulled image(s) would have been refused${s.unknown > 0 ? ` (${s.unknown} cannot be known)` : ''}.`)
  return lines
}

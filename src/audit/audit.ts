import type {HostRoot} from '../host/paths.js'
import {referenceName, referenceString} from '../policy/reference.js'
import {deadline} from '../registry/limits.js'
import {pulledReference} from '../verify/identity.js'
import {VERIFY_EXIT} from '../verify/verify.js'
import type {Policy} from '../policy/types.js'
import {type Judged, type JudgeName, judgePulls, type PulledReport, renderPulled} from './pulled.js'
import {type JudgeContext, judgeContext, judgeImage, type Outcome, type PolicyVerdict} from './judge.js'
import {type PullHistoryOptions, readPullHistory} from './history.js'
import {type PolicyView, policyView} from './policy-view.js'
import {listStorage} from './storage.js'
import type {Window} from './since.js'

/**
 * audit: every image in local storage (podman, crictl) and every running
 * container's image, judged against the installed policy or the candidate
 * the trust file would produce. Nothing in image storage changes.
 * Exit: 0 nothing running would break, 3 a running container's image would
 * be refused, 4 that cannot be known.
 */
export interface AuditEntry extends PolicyVerdict {
  /** The name judged, as a pull would use it. */
  reference: string
  imageId: string
  source: 'podman' | 'crictl'
  namespace?: string
  /** The manifest digest judged (local repo digest, or the registry's for the tag). */
  digest: string | null
  /** Running containers started from this image under this name. */
  containers: Array<{id: string; name: string}>
  running: boolean
}

export interface AuditReport {
  /** at: the candidate is the policy as of that time (audit --at), its expired scopes and keys left out. */
  policy: {source: 'installed' | 'candidate'; file: string; at?: string}
  /** Grouped by outcome (refused, unknown, accepted); running images first in each group. */
  images: AuditEntry[]
  /** Images with no name (dangling): a pull needs a name, so they are not judged. */
  unnamed: string[]
  summary: {images: number; accepted: number; refused: number; unknown: number; runningContainers: number; runningRefused: number; runningUnknown: number}
  /** With --since: each reference pulled in the window, once, with its verdict. */
  pulled?: PulledReport
  warnings: string[]
  exitCode: number
}

export interface AuditOptions extends PullHistoryOptions {
  /** audit --since: also judge what the host pulled in this window. */
  window?: Window
  candidate?: boolean
  /** With candidate: judge against the policy as it will be at this time. */
  at?: Date
  config?: string
  user?: boolean
  tlsVerify: boolean
  /** Images judged at once (signature fetches in flight). */
  concurrency?: number
  /** Each image's deadline for all its fetches (--timeout). */
  timeoutSeconds?: number
}

const ORDER: Record<Outcome, number> = {refused: 0, unknown: 1, accepted: 2}

async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const workers = Array.from({length: Math.min(limit, items.length)}, async () => {
    while (next < items.length) await work(items[next++])
  })
  await Promise.all(workers)
}

export async function runAudit(root: HostRoot, options: AuditOptions): Promise<AuditReport> {
  const [view, storage, history] = await Promise.all([
    policyView(root, {candidate: options.candidate ? {config: options.config, user: options.user, at: options.at} : undefined}),
    listStorage(options),
    options.window ? readPullHistory(options.window, options) : undefined,
  ])
  const warnings = [...view.warnings, ...storage.warnings]
  const {entries, unnamed} = collectNames(storage, warnings)
  const shared = judgeContext(root, view, {tlsVerify: options.tlsVerify, budget: deadline(options.timeoutSeconds)})
  const judge = judgeName(shared, view, options)
  const results: AuditEntry[] = []
  await pool([...entries.values()], options.concurrency ?? 8, async (pending) => {
    const {repoDigests, ...entry} = pending
    const policy = entry.source === 'crictl' ? ((await view.crio(entry.namespace)) ?? view.podman) : view.podman
    results.push({...entry, ...(await judge(policy, entry.reference, repoDigests))})
  })
  const pulled = options.window && history ? await judgePulls(options.window, history, storage.images, judge, view) : undefined
  if (pulled) warnings.push(...pulled.warnings)

  if (judge.sigstoreJudged()) {
    // The signatures were checked natively; the engines here may still refuse them all.
    const {sigstoreSupport} = await import('../sigstore/probe.js')
    const refusing = (await sigstoreSupport(root)).filter((p) => p.canVerify === false)
    if (refusing.length > 0) {
      warnings.push(`${refusing.map((p) => `${p.engine} ${p.version}`).join(' and ')} cannot verify sigstore signatures: a real pull of an image under a sigstoreSigned scope is refused here whatever its signature (outcomes above are the signatures' own verdicts)`)
    }
  }

  results.sort((a, b) => ORDER[a.outcome] - ORDER[b.outcome] || Number(b.running) - Number(a.running) || a.reference.localeCompare(b.reference))
  const summary = summarize(results, storage.containers.length)
  const exitCode = summary.runningRefused > 0 ? VERIFY_EXIT.failed : summary.runningUnknown > 0 ? VERIFY_EXIT.inconclusive : VERIFY_EXIT.confirmed
  return {policy: {source: view.source, file: view.podman.file, ...(options.candidate && options.at ? {at: options.at.toISOString()} : {})}, images: results, unnamed, summary, ...(pulled ? {pulled: pulled.report} : {}), warnings, exitCode}
}

type Pending = Omit<AuditEntry, 'policyFile' | 'scope' | 'requirement' | 'outcome' | 'reason'> & {repoDigests: string[]}

/** Every name to judge: running containers first, under the name they were started with, then every local image name. */
function collectNames(storage: Awaited<ReturnType<typeof listStorage>>, warnings: string[]): {entries: Map<string, Pending>; unnamed: string[]} {
  const entries = new Map<string, Pending>()
  const imagesById = new Map(storage.images.map((i) => [`${i.source} ${i.id}`, i]))
  const unnamed: string[] = []
  const add = (source: Pending['source'], imageId: string, name: string, repoDigests: string[], namespace?: string): Pending | undefined => {
    const key = `${source} ${namespace ?? ''} ${imageId} ${name}`
    let entry = entries.get(key)
    if (!entry) {
      entry = {reference: name, imageId, source, namespace, digest: null, containers: [], running: false, repoDigests}
      entries.set(key, entry)
    }

    return entry
  }

  for (const c of storage.containers) {
    const image = imagesById.get(`${c.source} ${c.imageId}`) ?? [...imagesById.values()].find((i) => i.source === c.source && i.id.startsWith(c.imageId))
    const byId = /^(sha256:)?[a-f0-9]{12,64}$/.test(c.image)
    const names = byId ? (image?.names ?? []) : [c.image]
    if (names.length === 0) {
      warnings.push(`running container ${c.name} (${c.id.slice(0, 12)}) uses image ${c.imageId.slice(0, 12)}, which has no name: a pull needs one, so it is not judged`)
      continue
    }

    for (const name of names) {
      const entry = add(c.source, image?.id ?? c.imageId, name, image?.repoDigests ?? [], c.namespace)!
      entry.running = true
      entry.containers.push({id: c.id, name: c.name})
    }
  }

  for (const image of storage.images) {
    if (image.names.length === 0) unnamed.push(image.id)
    for (const name of image.names) if (![...entries.values()].some((e) => e.source === image.source && e.imageId === image.id && e.reference === name)) add(image.source, image.id, name, image.repoDigests)
  }

  return {entries, unnamed}
}

function summarize(results: AuditEntry[], runningContainers: number): AuditReport['summary'] {
  const running = results.filter((r) => r.running)
  return {
    images: results.length,
    accepted: results.filter((r) => r.outcome === 'accepted').length,
    refused: results.filter((r) => r.outcome === 'refused').length,
    unknown: results.filter((r) => r.outcome === 'unknown').length,
    runningContainers,
    runningRefused: running.filter((r) => r.outcome === 'refused').length,
    runningUnknown: running.filter((r) => r.outcome === 'unknown').length,
  }
}

/** Judges one image name as a fresh pull would be, each with its own deadline; used for local images and pulls alike. */
function judgeName(shared: JudgeContext, view: PolicyView, options: AuditOptions): JudgeName {
  let sigstore = false
  const judge = async (policy: {file: string; policy: Policy}, name: string, repoDigests: string[]): Promise<Judged> => {
    const ctx = {...shared, registry: {tlsVerify: options.tlsVerify, budget: deadline(options.timeoutSeconds)}}
    const ref = pulledReference(name)
    const none = {digest: null, policyFile: policy.file, scope: null, requirement: '', outcome: 'unknown' as const}
    if (typeof ref === 'string') return {...none, reference: name, reason: `cannot be known: "${name}" is not a reference a pull can use: ${ref}`}
    // The local manifest digest for this repository, as podman records it.
    const repo = referenceName(ref)
    const local = repoDigests.map((d) => pulledReference(d)).find((r) => typeof r !== 'string' && referenceName(r) === repo && r.digest)
    const digest = ref.digest ?? (typeof local === 'object' ? local.digest : undefined)
    try {
      const verdict = await judgeImage(ctx, policy.policy, {ref, digest})
      if (verdict.requirements.some((r) => r.type === 'sigstoreSigned')) sigstore = true
      return {reference: referenceString(ref), digest: verdict.digest ?? null, policyFile: policy.file, scope: verdict.scope, requirement: verdict.requirement, outcome: verdict.outcome, reason: verdict.reason, signer: verdict.signer}
    } catch (error) {
      return {...none, reference: referenceString(ref), reason: `cannot be known: ${(error as Error).message}`}
    }
  }

  return Object.assign(judge, {sigstoreJudged: () => sigstore})
}

export function renderAudit(report: AuditReport): string {
  const lines = [`Judged against the ${report.policy.source} policy ${report.policy.file}${report.policy.at ? ` as of ${report.policy.at}` : ''}:`]
  const titles: Record<Outcome, string> = {refused: 'WOULD BE REFUSED', unknown: 'CANNOT BE KNOWN', accepted: 'would be accepted'}
  for (const outcome of ['refused', 'unknown', 'accepted'] as const) {
    const group = report.images.filter((i) => i.outcome === outcome)
    if (group.length === 0) continue
    lines.push(`${titles[outcome]} (${group.length}):`)
    for (const i of group) {
      const flag = i.running ? `RUNNING (${i.containers.map((c) => c.name).join(', ')}) ` : ''
      lines.push(`  ${flag}${i.reference}${i.namespace ? ` [namespace ${i.namespace}]` : ''}`)
      lines.push(`      scope ${i.scope === null ? '(default)' : i.scope === '' ? '"" (transport default)' : i.scope}: ${i.requirement}`)
      lines.push(`      ${i.reason}`)
    }
  }

  const s = report.summary
  lines.push(`${s.images} image name(s): ${s.accepted} accepted, ${s.refused} refused, ${s.unknown} unknown; ${s.runningContainers} running container(s), ${s.runningRefused} would break, ${s.runningUnknown} unknown.`)
  if (report.pulled) lines.push(...renderPulled(report.pulled, report.policy.source))
  return lines.join('\n')
}

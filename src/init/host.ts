import {runTool} from '../exec/run-tool.js'
import {detectEngines, findOnPath, type EngineInfo} from '../host/detect.js'
import type {ConfigFileReport} from '../host/engine-view.js'
import {configPathReports, readHostViews} from '../host/engine-view-read.js'
import type {HostRoot} from '../host/paths.js'
import {dockerScopeChain} from '../policy/match.js'
import {parseImageReference} from '../policy/reference.js'

export interface HostSurvey {
  engines: EngineInfo[]
  configPaths: ConfigFileReport[]
  /** Images in local storage (podman images), by their names. */
  localImages: string[]
  /** Images of running containers (podman ps). */
  runningImages: string[]
  /** What the host pulled lately (podman events, CRI-O's log), when it has a history: "in the last 7 days". */
  pulled?: {window: string; references: string[]}
}

async function podmanJson(args: string[]): Promise<Array<Record<string, unknown>>> {
  if (!(await findOnPath('podman'))) return []
  const result = await runTool('podman', [...args, '--format', 'json'], {allowFailure: true, timeoutMs: 30_000}).catch(() => undefined)
  if (!result || result.exitCode !== 0) return []
  try {
    const parsed = JSON.parse(result.stdout || '[]')
    return Array.isArray(parsed) ? parsed : []
  } catch {
    return []
  }
}

export async function surveyHost(root: HostRoot): Promise<HostSurvey> {
  const [engines, images, containers, pulled] = await Promise.all([detectEngines(), podmanJson(['images']), podmanJson(['ps']), recentPulls()])
  const paths = configPathReports(root, (await readHostViews(root, engines)).views)
  const localImages = images.flatMap((i) => (Array.isArray(i.Names) ? (i.Names as string[]) : [])).filter((n) => !n.startsWith('<none>'))
  const runningImages = containers.map((c) => String(c.Image ?? '')).filter(Boolean)
  return {engines, configPaths: paths, localImages: [...new Set(localImages)].sort(), runningImages: [...new Set(runningImages)].sort(), ...(pulled ? {pulled} : {})}
}

/** The references pulled in the last 7 days, as audit --since 7d reads them; none when there is no history (or it cannot be read). */
async function recentPulls(): Promise<HostSurvey['pulled']> {
  const {readPullHistory} = await import('../audit/history.js')
  const {parseSince} = await import('../audit/since.js')
  const window = parseSince('7d', new Date())
  const {pulls} = await readPullHistory(window, {}).catch(() => ({pulls: []}))
  return pulls.length === 0 ? undefined : {window: window.phrase, references: [...new Set(pulls.map((p) => p.reference))].sort()}
}

export function renderSurvey(survey: HostSurvey): string {
  const lines = ['Engines found:']
  if (survey.engines.length === 0) lines.push('  none on PATH: install podman or skopeo to enforce and verify')
  for (const e of survey.engines) lines.push(`  ${e.name.padEnd(8)} ${e.version.padEnd(8)} ${e.path}${e.containersImage ? `  (containers/image ${e.containersImage})` : ''}`)
  lines.push('Files they read:')
  for (const p of survey.configPaths) lines.push(`  ${p.exists ? 'present' : 'absent '} ${p.path}  ${p.role}`)
  const shadows = survey.configPaths.filter((p) => p.shadows)
  if (shadows.length > 0) {
    lines.push('Shadowing files (read before the ones imagetrust manages):')
    for (const p of shadows) lines.push(`  ${p.path} hides ${p.shadows}`)
  }

  return lines.join('\n')
}

function registryOf(image: string): string | undefined {
  const ref = parseImageReference(image)
  return typeof ref === 'string' ? undefined : ref.domain
}

/** Whether an image is under one of the scopes (the scopes that will stay allowed). */
export function coveredBy(image: string, scopes: string[]): boolean {
  const ref = parseImageReference(image)
  if (typeof ref === 'string') return false
  const chain = dockerScopeChain(ref)
  return scopes.some((s) => chain.includes(s))
}

/**
 * What default: reject would stop: images (local and running) whose registry
 * no scope lists could no longer be pulled again. Local transports stay open.
 */
export function rejectImpact(
  survey: HostSurvey,
  scopes: string[],
): {registries: string[]; images: string[]; running: string[]; pulled?: {window: string; refused: string[]; of: number}} {
  const unlisted = (i: string) => !i.startsWith('localhost/') && !coveredBy(i, scopes)
  const images = survey.localImages.filter(unlisted)
  const running = survey.runningImages.filter(unlisted)
  const registries = [...new Set([...images, ...running].map((i) => registryOf(i)).filter((r): r is string => Boolean(r)))].sort()
  const pulled = survey.pulled && {window: survey.pulled.window, refused: survey.pulled.references.filter(unlisted), of: survey.pulled.references.length}
  return {registries, images, running, ...(pulled ? {pulled} : {})}
}

export function renderImpact(impact: ReturnType<typeof rejectImpact>): string {
  const lines =
    impact.images.length === 0 && impact.running.length === 0
      ? ['Impact of reject: no image in local storage and no running container comes from an unlisted registry.']
      : [`Impact of reject: these could no longer be pulled (registries ${impact.registries.join(', ')}):`]
  for (const i of impact.images) lines.push(`  image      ${i}`)
  for (const i of impact.running) lines.push(`  running    ${i} (keeps running; a restart that pulls again fails)`)
  const {pulled} = impact
  if (pulled) {
    const window = pulled.window[0].toUpperCase() + pulled.window.slice(1)
    lines.push(`${window}, ${pulled.refused.length} of ${pulled.of} pulled image(s) would have been refused (from unlisted registries).`)
    for (const i of pulled.refused) lines.push(`  pulled     ${i}`)
  }

  return lines.join('\n')
}

/** Suggested test images for a scope: local images under it. */
export function suggestTestImages(survey: HostSurvey, scope: string): string[] {
  return survey.localImages.filter((i) => coveredBy(i, [scope]))
}

/** Whether the lookaside answers HTTP at all (a 404 for the root is fine: signatures live below it). */
export async function probeLookaside(url: string): Promise<{ok: boolean; detail: string}> {
  if (url.startsWith('file://')) return {ok: true, detail: 'local directory'}
  try {
    const response = await fetch(url, {method: 'GET', signal: AbortSignal.timeout(10_000), redirect: 'manual'})
    await response.body?.cancel()
    return {ok: response.status < 500, detail: `HTTP ${response.status}`}
  } catch (error) {
    const cause = (error as {cause?: {code?: string; errors?: Array<{code?: string}>}}).cause
    return {ok: false, detail: cause?.code ?? cause?.errors?.[0]?.code ?? (error as Error).message}
  }
}

import * as Flags from '@oclif/core/flags'

import {writeFileAtomic} from '../fs/atomic.js'

/**
 * Prometheus text exposition (format 0.0.4), for node_exporter's textfile
 * collector: the one place that renders, escapes label values and writes.
 */
export interface Sample {
  labels?: Record<string, string>
  value: number
}

export interface Family {
  name: string
  help: string
  type: 'gauge' | 'counter'
  samples: Sample[]
}

/** Label values escape backslash, double quote and newline; HELP text only backslash and newline. */
export function escapeLabelValue(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

function escapeHelp(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Number.POSITIVE_INFINITY) return '+Inf'
  if (value === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(value)
}

function renderSample(name: string, sample: Sample): string {
  const labels = Object.entries(sample.labels ?? {})
  const inside = labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')
  return `${name}${labels.length > 0 ? `{${inside}}` : ''} ${formatValue(sample.value)}`
}

export function renderExposition(families: Family[]): string {
  const lines: string[] = []
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`)
    for (const sample of family.samples) lines.push(renderSample(family.name, sample))
  }

  return `${lines.join('\n')}\n`
}

/**
 * The metrics file is a path on the machine imagetrust runs on, taken as
 * given and never resolved under --root: it is read by this machine's
 * node_exporter, not by the container engines of the host root being checked.
 * A temp file in the same directory and a rename, so the collector never
 * reads half a file (its temp name does not end in .prom, so it is skipped).
 */
export async function writeExposition(file: string, families: Family[]): Promise<void> {
  await writeFileAtomic(file, renderExposition(families), {mode: 0o644})
}

/** --metrics FILE; check also takes it from IMAGETRUST_METRICS (the systemd unit's), audit only from the flag so the two never write one file. */
export const metricsFlag = (env?: string) =>
  Flags.string({
    description: `Also write Prometheus metrics to FILE (text exposition, atomically: for node_exporter's textfile collector, e.g. /var/lib/prometheus/node-exporter/imagetrust${env ? '' : '-audit'}.prom). A path on this machine, not under --root.`,
    helpValue: 'FILE',
    ...(env ? {env} : {}),
  })

export const seconds = (date: Date | string): number => Math.floor(new Date(date).getTime() / 1000)

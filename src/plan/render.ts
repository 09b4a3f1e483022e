import type {FileChange} from './types.js'

/** A unified diff of the plan, one file after another, paths as this run sees them. */
export async function renderDiff(changes: FileChange[], resolve: (hostPath: string) => string): Promise<string> {
  const {createTwoFilesPatch} = await import('diff')
  const parts: string[] = []
  for (const change of changes) {
    const file = resolve(change.hostPath)
    if (change.before === change.after) {
      parts.push(`--- ${file}\n+++ ${file}\n# mode → ${change.mode.toString(8).padStart(4, '0')}\n`)
      continue
    }

    const patch = createTwoFilesPatch(
      change.before === null ? '/dev/null' : file,
      change.after === null ? '/dev/null' : file,
      change.before ?? '',
      change.after ?? '',
      undefined,
      undefined,
      {context: 3},
    )
    // Drop the "====" header line createTwoFilesPatch starts with.
    parts.push(patch.replace(/^Index: [^\n]*\n=+\n/, "").replace(/^=+\n/, ""))
  }

  return parts.join('')
}

/**
 * Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)
 * or --no-color is given. One switch for the whole CLI.
 */
export function colorEnabled(options: {noColor?: boolean; stream?: NodeJS.WriteStream} = {}): boolean {
  if (options.noColor) return false
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.argv.includes('--no-color')) return false
  return Boolean((options.stream ?? process.stdout).isTTY)
}

const CODES = {red: 31, green: 32, yellow: 33, cyan: 36, bold: 1, dim: 2} as const
export type Color = keyof typeof CODES

export function paint(text: string, color: Color, enabled: boolean): string {
  return enabled ? `\u001B[${CODES[color]}m${text}\u001B[0m` : text
}

/** A unified diff with removed lines red, added lines green and hunk headers cyan. */
export function colorDiff(diff: string, enabled: boolean): string {
  if (!enabled) return diff
  return diff
    .split('\n')
    .map((line) => {
      if (line.startsWith('+++') || line.startsWith('---')) return paint(line, 'bold', true)
      if (line.startsWith('+')) return paint(line, 'green', true)
      if (line.startsWith('-')) return paint(line, 'red', true)
      if (line.startsWith('@@')) return paint(line, 'cyan', true)
      return line
    })
    .join('\n')
}

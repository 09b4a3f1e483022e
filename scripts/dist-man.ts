/**
 * imagetrust.1, the man page the .deb and .rpm install, generated from the commands'
 * own help (oclif.manifest.json: summaries, descriptions, arguments, flags, examples),
 * so it cannot fall behind them. Usage: node --import tsx scripts/dist-man.ts OUT
 */
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

const REPO = path.resolve(import.meta.dirname, '..')

interface Flag {
  name: string
  char?: string
  description?: string
  helpValue?: string
  type: 'boolean' | 'option'
  options?: string[]
  hidden?: boolean
  allowNo?: boolean
  helpGroup?: string
}
interface Command {
  id: string
  summary?: string
  description?: string
  hidden?: boolean
  args: Record<string, {name: string; description?: string; required?: boolean}>
  flags: Record<string, Flag>
  examples?: Array<string | {command: string; description?: string}>
}

/** Text as roff reads it: backslashes and hyphens escaped, no line starting with a control character. */
function roff(text: string): string {
  return text
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n')
}

function flagLine(flag: Flag): string {
  const names = [flag.char ? `\\-${flag.char}` : undefined, `\\-\\-${flag.allowNo ? '[no\\-]' : ''}${roff(flag.name)}`].filter(Boolean).join(', ')
  const value = flag.type === 'option' ? ` \\fI${roff(flag.helpValue ?? (flag.options ? flag.options.join('|') : 'VALUE'))}\\fR` : ''
  return `.TP\n\\fB${names}\\fR${value}\n${roff(flag.description ?? '')}`
}

function commandSection(bin: string, c: Command): string {
  const words = c.id.replaceAll(':', ' ')
  const args = Object.values(c.args ?? {}).map((a) => (a.required ? ` \\fI${roff(a.name.toUpperCase())}\\fR` : ` [\\fI${roff(a.name.toUpperCase())}\\fR]`))
  const lines = [`.SS "${roff(`${bin} ${words}`)}${args.join('')}"`, roff(c.summary ?? '')]
  if (c.description) lines.push('.PP', roff(c.description))
  for (const a of Object.values(c.args ?? {})) if (a.description) lines.push(`.TP\n\\fI${roff(a.name.toUpperCase())}\\fR\n${roff(a.description)}`)
  for (const f of Object.values(c.flags ?? {})) if (!f.hidden) lines.push(flagLine(f))
  const examples = (c.examples ?? []).map((e) => (typeof e === 'string' ? e : e.command).replaceAll('<%= config.bin %>', bin))
  if (examples.length > 0) lines.push('.PP', 'Examples:', '.RS', '.nf', ...examples.map(roff), '.fi', '.RE')
  return lines.join('\n')
}

const out = process.argv[2]
if (!out) throw new Error('usage: dist-man.ts OUT')
const pjson = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'))
const manifest = JSON.parse(readFileSync(path.join(REPO, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, Command>}
const bin: string = pjson.oclif.bin
const commands = Object.values(manifest.commands)
  .filter((c) => !c.hidden)
  .sort((a, b) => a.id.localeCompare(b.id))
// A fixed date (the package's version, not the build's clock): the same source builds the same page.
const page = [
  `.TH ${bin.toUpperCase()} 1 "" "${bin} ${pjson.version}" "User Commands"`,
  '.SH NAME',
  `${bin} \\- ${roff(pjson.description)}`,
  '.SH SYNOPSIS',
  `\\fB${bin}\\fR \\fICOMMAND\\fR [\\fIFLAGS\\fR]`,
  '.SH DESCRIPTION',
  roff(
    'imagetrust writes containers-policy.json(5), containers-registries.d(5) and the trusted public keys so that Podman, CRI-O and skopeo run only container images signed by keys you trust, from one trust file (/etc/imagetrust/trust.yaml), and proves it with real pulls. Every command takes --help; most take --json.',
  ),
  '.SH COMMANDS',
  ...commands.map((c) => commandSection(bin, c)),
  '.SH EXIT STATUS',
  '.TP\n0\nSuccess (check: in sync).',
  '.TP\n1\nError.',
  '.TP\n2\nDrift (check).',
  '.TP\n3\nNot enforced (verify).',
  '.TP\n4\nInconclusive (verify).',
  '.TP\n64\nUsage error.',
  '.SH FILES',
  '.TP\n/etc/imagetrust/trust.yaml\nThe trust file (made by \\fBimagetrust init\\fR; the package installs none).',
  '.TP\n/var/lib/imagetrust\nBackups of the files apply replaced (\\fBimagetrust rollback\\fR); kept when the package is purged.',
  '.TP\n/usr/share/imagetrust/templates\nAn annotated trust file, and systemd and nginx examples.',
  '.SH SEE ALSO',
  'containers\\-policy.json(5), containers\\-registries.d(5), podman(1), skopeo(1)',
  '',
].join('\n')
writeFileSync(out, page)

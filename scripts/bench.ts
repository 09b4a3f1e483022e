/**
 * npm run bench: how fast imagetrust starts, checks and applies, as medians
 * over several runs, with ratios measured in the same run (machines are noisy).
 * Every scope is signed (one GPG key, a lookaside). The goals: check of 100
 * scopes ≤ 2.5 × node -e 0 (npm form) and ≤ 2.0 × (single executable, if
 * npm run dist:bin made it); apply of 10,000 on an empty root < 1.5 s and
 * < 250 MiB peak.
 * Prints a table and writes bench/results.json.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const REPO = path.resolve(import.meta.dirname, '..')
const CLI = path.join(REPO, 'bin/run.js')
const work = mkdtempSync(path.join(os.tmpdir(), 'imagetrust-bench-'))

function time(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const start = process.hrtime.bigint()
  // A large buffer: 40,000 foreign scopes mean tens of thousands of warning lines on stderr.
  const result = spawnSync(cmd, args, {env, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 512 * 1024 * 1024})
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (result.status !== 0 && result.status !== 2) throw new Error(`${cmd} ${args.join(' ')} failed: ${result.stderr}`)
  return ms
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function measure(runs: number, fn: () => number): number {
  fn() // warm the page cache
  return median(Array.from({length: runs}, fn))
}

/** A public key of its own, made by gpg in a throw-away home (its agent stopped), for the signed scopes. */
function makeKey(): string {
  const home = path.join(work, 'gnupg')
  mkdirSync(home, {mode: 0o700})
  const gpg = (args: string[]) => execFileSync('gpg', ['--homedir', home, '--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args])
  gpg(['--quick-gen-key', 'bench <bench@example.test>', 'ed25519', 'sign', 'never'])
  const file = path.join(work, 'bench.asc')
  writeFileSync(file, gpg(['--armor', '--export']))
  spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'])
  return file
}

const keyFile = makeKey()

/** A trust file of n signed scopes (one key, a lookaside each), and a root: with Debian's policy, or empty. */
function setup(name: string, n: number, options: {empty?: boolean} = {}): {root: string; config: string} {
  const dir = path.join(work, name)
  const root = path.join(dir, 'root')
  mkdirSync(path.join(root, 'etc/containers'), {recursive: true})
  if (!options.empty) writeFileSync(path.join(root, 'etc/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
  const lines = ['version: 1', 'default: reject', 'keys:', `  bench: {file: ${JSON.stringify(keyFile)}}`, 'scopes:']
  for (let i = 0; i < n; i++) lines.push(`  "registry${i % 97}.example.com/team${i}":`, '    policy: signed', '    keys: [bench]', `    lookaside: https://sigs${i % 13}.example.com`)
  const config = path.join(dir, 'trust.yaml')
  writeFileSync(config, lines.join('\n') + '\n')
  return {root, config}
}

/** Peak resident memory (MiB) of one run, from the process itself (scripts/peak-rss.mjs, preloaded). */
function peakMiB(args: string[]): number {
  const out = path.join(work, `rss-${process.hrtime.bigint()}`)
  const result = spawnSync(process.execPath, ['--import', path.join(REPO, 'scripts/peak-rss.mjs'), CLI, ...args], {env: {...process.env, IMAGETRUST_BENCH_RSS: out}, stdio: 'ignore'})
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed`)
  return Number(readFileSync(out, 'utf8')) / 1024
}

/** apply of n signed scopes on an empty root (no policy.json at all), each run on a fresh one: median ms, and the peak memory of one more. */
function firstApplyOnEmptyRoot(n: number, runs: number): {ms: number; peakMiB: number} {
  let i = 0
  const fresh = () => setup(`empty-${n}-${i++}`, n, {empty: true})
  const ms = median(
    Array.from({length: runs}, () => {
      const {root, config} = fresh()
      return time(process.execPath, [CLI, 'apply', '--root', root, '-c', config])
    }),
  )
  const {root, config} = fresh()
  return {ms, peakMiB: peakMiB(['apply', '--root', root, '-c', config])}
}

const runs = Number(process.env.BENCH_RUNS ?? 7)
const rows: Array<{what: string; ms: number; ratio?: string}> = []
const nodeFloor = measure(runs, () => time(process.execPath, ['-e', '0']))
rows.push({what: 'node -e 0', ms: nodeFloor, ratio: '1.00×'})
const version = measure(runs, () => time(process.execPath, [CLI, '--version']))
rows.push({what: 'imagetrust --version', ms: version, ratio: `${(version / nodeFloor).toFixed(2)}×`})

let statusMs = 0
let statusRatio = 0
const scaling: Record<string, {check: number; apply: number; firstApply: number}> = {}
for (const n of [10, 100, 1000, 10_000]) {
  const {root, config} = setup(`n${n}`, n)
  const firstStart = process.hrtime.bigint()
  execFileSync(process.execPath, [CLI, 'apply', '--root', root, '-c', config], {stdio: 'ignore'})
  const firstApply = Number(process.hrtime.bigint() - firstStart) / 1e6
  const r = n >= 10_000 ? 3 : runs
  const check = measure(r, () => time(process.execPath, [CLI, 'check', '--root', root, '-c', config]))
  const apply = measure(r, () => time(process.execPath, [CLI, 'apply', '--root', root, '-c', config]))
  scaling[n] = {check, apply, firstApply}
  rows.push({what: `check, ${n} scopes`, ms: check, ratio: `${(check / nodeFloor).toFixed(2)}×`})
  if (n === 100) {
    // Each status run paired with a check run right before it: the ratio is the median of the pairs' (the machine's noise hits both alike).
    const pairs = Array.from({length: Math.max(r, 11)}, () => {
      const checkMs = time(process.execPath, [CLI, 'check', '--root', root, '-c', config])
      return {checkMs, statusMs: time(process.execPath, [CLI, 'status', '--root', root, '-c', config])}
    })
    statusMs = median(pairs.map((p) => p.statusMs))
    statusRatio = median(pairs.map((p) => p.statusMs / p.checkMs))
    rows.push({what: `status, ${n} scopes, paired with check`, ms: statusMs, ratio: `${statusRatio.toFixed(2)}× check`})
  }
  rows.push({what: `apply (no-op), ${n} scopes`, ms: apply})
  rows.push({what: `apply (first), ${n} scopes`, ms: firstApply})
}

// policy.json with 40,000 foreign scopes (issue 19: check and status were quadratic in them).
function setupForeign(name: string, n: number): {root: string; config: string} {
  const dir = path.join(work, name)
  const root = path.join(dir, 'root')
  mkdirSync(path.join(root, 'etc/containers'), {recursive: true})
  const docker: Record<string, unknown> = {}
  for (let i = 0; i < n; i++) docker[`foreign${i % 211}.example.com/team${i}`] = [{type: i % 2 ? 'reject' : 'insecureAcceptAnything'}]
  writeFileSync(path.join(root, 'etc/containers/policy.json'), JSON.stringify({default: [{type: 'insecureAcceptAnything'}], transports: {docker}}))
  const config = path.join(dir, 'trust.yaml')
  writeFileSync(config, 'version: 1\ndefault: reject\nscopes:\n  "registry.example.com/x":\n    policy: accept\n  "foreign3.example.com":\n    policy: reject\n')
  return {root, config}
}

const FOREIGN = 40_000
const foreign = setupForeign('foreign', FOREIGN)
execFileSync(process.execPath, [CLI, 'apply', '--root', foreign.root, '-c', foreign.config], {stdio: 'ignore'})
const foreignCheck = measure(3, () => time(process.execPath, [CLI, 'check', '--root', foreign.root, '-c', foreign.config]))
const foreignStatus = measure(3, () => time(process.execPath, [CLI, 'status', '--root', foreign.root, '-c', foreign.config]))
rows.push({what: `check, ${FOREIGN} foreign scopes`, ms: foreignCheck}, {what: `status, ${FOREIGN} foreign scopes`, ms: foreignStatus})

// Bulk provisioning against podman's own tool, one call per scope.
let podman: {n: number; imagetrust: number; podmanTrustSet: number} | undefined
if (spawnSync('podman', ['--version']).status === 0 && process.getuid?.() === 0) {
  const n = 100
  const {root, config} = setup('podman', n)
  const policy = path.join(root, 'etc/containers/policy.json')
  const ours = time(process.execPath, [CLI, 'apply', '--root', root, '-c', config])
  writeFileSync(policy, '{"default":[{"type":"insecureAcceptAnything"}]}\n')
  // One call per scope, all in one private mount namespace whose /etc and /var/lib are overlays:
  // rootful podman writes to both (its network lock, its storage).
  const layer = mkdtempSync('/tmp/itb-')
  const calls = Array.from({length: n}, (_, i) => `podman --storage-driver vfs --root ${layer}/store image trust set --policypath ${policy} -t ${i % 3 === 0 ? 'reject' : 'accept'} registry${i % 97}.example.com/team${i}`)
  const overlays = ['/etc', '/var/lib'].map((dir, i) => `mkdir -p ${layer}/u${i} ${layer}/w${i} && mount -t overlay overlay -o lowerdir=${dir},upperdir=${layer}/u${i},workdir=${layer}/w${i} ${dir}`)
  const script = [...overlays, ...calls].join(' && ')
  const start = process.hrtime.bigint()
  execFileSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {stdio: 'ignore'})
  podman = {n, imagetrust: ours, podmanTrustSet: Number(process.hrtime.bigint() - start) / 1e6}
  rmSync(layer, {recursive: true, force: true})
  rows.push({what: `apply ${n} scopes`, ms: ours})
  rows.push({what: `podman image trust set × ${n}`, ms: podman.podmanTrustSet, ratio: `${(podman.podmanTrustSet / ours).toFixed(1)}× slower`})
}

// audit of 100 local images: a loopback registry and lookaside, a throw-away podman store.
let audit: {images: number; ms: number; podmanImagesMs: number} | undefined
if (spawnSync('podman', ['--version']).status === 0 && process.getuid?.() === 0) {
  const {setupAuditBench} = await import('./bench-audit.ts')
  const bench = await setupAuditBench(100)
  try {
    const [cmd, args] = bench.command(CLI)
    const ms = measure(3, () => time(cmd, args))
    const podmanImagesMs = measure(3, () => time(...bench.podmanImages))
    audit = {images: bench.images, ms, podmanImagesMs}
    rows.push({what: `audit, ${bench.images} local images`, ms}, {what: `  of which podman images (alone)`, ms: podmanImagesMs})
  } finally {
    await bench.cleanup()
  }
}

// Start-up of both forms, each run paired with a `node -e 0` right before it (the machine's
// noise hits both alike): the npm form (bin/run.js) and the single executable (npm run dist:bin).
const SEA = path.join(REPO, 'dist-bin/imagetrust-linux-x64')
function pairedRatio(cmd: string, args: string[]): {ms: number; floor: number; ratio: number} {
  const pairs = Array.from({length: Math.max(runs, 11)}, () => {
    const floor = time(process.execPath, ['-e', '0'])
    return {floor, ms: time(cmd, args)}
  })
  return {ms: median(pairs.map((p) => p.ms)), floor: median(pairs.map((p) => p.floor)), ratio: median(pairs.map((p) => p.ms / p.floor))}
}
const startup = setup('startup', 100)
execFileSync(process.execPath, [CLI, 'apply', '--root', startup.root, '-c', startup.config], {stdio: 'ignore'})
const checkArgs = ['check', '--root', startup.root, '-c', startup.config]
time(process.execPath, [CLI, ...checkArgs]) // warm the page cache
const tarballStart = pairedRatio(process.execPath, [CLI, ...checkArgs])
rows.push({what: 'check, 100 scopes, npm form, paired', ms: tarballStart.ms, ratio: `${tarballStart.ratio.toFixed(2)}× (node -e 0: ${tarballStart.floor.toFixed(0)} ms)`})
let seaStart: typeof tarballStart | undefined
if (spawnSync(SEA, ['--version']).status === 0) {
  seaStart = pairedRatio(SEA, checkArgs)
  rows.push({what: 'check, 100 scopes, single executable', ms: seaStart.ms, ratio: `${seaStart.ratio.toFixed(2)}× (node -e 0: ${seaStart.floor.toFixed(0)} ms)`})
} else console.log(`(no ${path.relative(REPO, SEA)}: npm run dist:bin builds it, to measure the single executable too)`)

// The fleet: converging 5 hosts over real SSH with the Ansible role (the single executable), cold and warm.
let fleet: import('./bench-fleet.ts').FleetBench | undefined
if (process.getuid?.() === 0 && spawnSync('ansible-playbook', ['--version']).status === 0 && spawnSync('/usr/sbin/sshd', ['-V']).status !== null) {
  const {benchFleet} = await import('./bench-fleet.ts')
  fleet = await benchFleet(5)
  rows.push({what: `fleet: converge ${fleet.hosts} hosts (cold)`, ms: fleet.coldMs}, {what: `fleet: converge ${fleet.hosts} hosts (warm)`, ms: fleet.warmMs})
}

const check100 = scaling[100].check / nodeFloor
const empty10k = firstApplyOnEmptyRoot(10_000, 3)
rows.push({what: 'apply, 10,000 scopes, empty root', ms: empty10k.ms, ratio: `${empty10k.peakMiB.toFixed(0)} MiB peak`})
const targets = {
  'check with 100 signed scopes ≤ 2.5 × node -e 0': {value: `${check100.toFixed(2)}×`, met: check100 <= 2.5},
  'npm form: check with 100 signed scopes ≤ 2.5 × node -e 0, paired': {value: `${tarballStart.ratio.toFixed(2)}×`, met: tarballStart.ratio <= 2.5},
  ...(seaStart
    ? {
        'single executable: check with 100 signed scopes ≤ 2.0 × node -e 0, paired': {value: `${seaStart.ratio.toFixed(2)}×`, met: seaStart.ratio <= 2.0},
        'single executable starts no slower than the npm form': {value: `${seaStart.ms.toFixed(0)} vs ${tarballStart.ms.toFixed(0)} ms`, met: seaStart.ms <= tarballStart.ms},
      }
    : {}),
  'apply of 10,000 signed scopes on an empty root < 1.5 s': {value: `${(empty10k.ms / 1000).toFixed(2)} s`, met: empty10k.ms < 1500},
  'apply of 10,000 signed scopes on an empty root < 250 MiB peak': {value: `${empty10k.peakMiB.toFixed(0)} MiB`, met: empty10k.peakMiB < 250},
  'time roughly linear in scopes (first apply 10,000 / 1,000 ≤ 15)': {
    value: `${(scaling[10_000].firstApply / scaling[1000].firstApply).toFixed(1)}×`,
    met: scaling[10_000].firstApply / scaling[1000].firstApply <= 15,
  },
  [`check with ${FOREIGN} foreign scopes in policy.json < 3 s`]: {value: `${(foreignCheck / 1000).toFixed(2)} s`, met: foreignCheck < 3000},
  [`status with ${FOREIGN} foreign scopes in policy.json < 3 s`]: {value: `${(foreignStatus / 1000).toFixed(2)} s`, met: foreignStatus < 3000},
  'status with 100 scopes ≤ 1.1 × check with 100 scopes, paired': {value: `${statusRatio.toFixed(2)}×`, met: statusRatio <= 1.1},
  ...(audit ? {'audit of 100 local images < 5 s': {value: `${(audit.ms / 1000).toFixed(2)} s`, met: audit.ms < 5000}} : {}),
}

console.log(`\n${'measurement'.padEnd(36)} ${'median ms'.padStart(10)}  ratio`)
for (const row of rows) console.log(`${row.what.padEnd(36)} ${row.ms.toFixed(1).padStart(10)}  ${row.ratio ?? ''}`)
console.log('\ntargets:')
for (const [name, t] of Object.entries(targets)) console.log(`  ${t.met ? 'met   ' : 'MISSED'} ${name}: ${t.value}`)
mkdirSync(path.join(REPO, 'bench'), {recursive: true})
writeFileSync(
  path.join(REPO, 'bench/results.json'),
  JSON.stringify({date: new Date().toISOString(), node: process.version, runs, rows, startup: {npm: tarballStart, singleExecutable: seaStart}, scaling, emptyRoot10k: empty10k, status: {ms: statusMs, ratioToCheck: statusRatio}, foreign: {scopes: FOREIGN, check: foreignCheck, status: foreignStatus}, podman, audit, fleet, targets}, null, 2) + '\n',
)
rmSync(work, {recursive: true, force: true})

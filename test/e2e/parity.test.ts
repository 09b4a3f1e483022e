/**
 * Parser parity, tested by difference: our strict policy.json parser, keyed
 * by the engine's containers/image version, must load exactly the files that
 * version loads. Every engine generation in the lab answers for each case:
 * Debian's skopeo 1.9.3 (c/image 5.23) and the lab's skopeo 1.23 (5.40)
 * through `skopeo --policy FILE copy dir: dir:` on a tiny image built here
 * (its message tells a policy that did not load, "Error loading trust policy:
 * invalid policy in ...", from one that loaded and judged the image), and the
 * lab's policy oracles for 5.29, 5.34, 5.38 and 5.40, which load each file as
 * DefaultPolicy loads an explicit path. Each generated variant is seeded
 * (IMAGETRUST_PARITY_SEED replays a run).
 *
 * Every case we ever got wrong is written to test/fixtures/parity/ with every
 * engine's verdict, and every later run replays them. Every file our
 * serializer writes back (with an engine's features) must load in that engine.
 */
import assert from 'node:assert/strict'
import {createHash, randomInt} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {capabilitiesFor} from '../../src/host/capabilities.ts'
import type {PolicyFeatures} from '../../src/policy/types.ts'
import {ParseError} from '../../src/lib/errors.ts'
import {parsePolicy} from '../../src/policy/parse.ts'
import {serializePolicy} from '../../src/policy/serialize.ts'
import {makeGpgKey} from '../support/gpg.ts'
import {etcContainersDigest, mustRun, runIsolated} from '../support/lab.ts'
import {ORACLE_VERSIONS, type OracleVersion, labBin, oracleLoads} from '../support/lab-bin.ts'
import {PolicyGenerator} from '../support/policy-gen.ts'

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/parity')
const SEED = process.env.IMAGETRUST_PARITY_SEED ? Number(process.env.IMAGETRUST_PARITY_SEED) : randomInt(2 ** 31)
const COUNT = Number(process.env.IMAGETRUST_PARITY_CASES ?? 350)
const CONCURRENCY = 4

type Verdict = 'loads' | 'refuses'

interface EngineAnswer {
  verdict: Verdict | 'unknown'
  message: string
}

interface OurAnswer {
  verdict: Verdict | 'crash'
  message: string
  serialized?: string
}

interface Case {
  name: string
  bytes: Buffer
  /** For fixtures: the verdicts recorded when it was kept, by engine id. */
  expected?: Map<string, Verdict>
  fixture?: string
}

/** One engine generation: how to ask it, and the parser features of its containers/image. */
interface Engine {
  id: string
  features: PolicyFeatures
  ask(files: string[]): Promise<Map<string, EngineAnswer>>
}

/** Fixtures kept before the lab name only Debian skopeo's verdict, on their first line. */
const DEBIAN_SKOPEO = 'skopeo-1.9.3'

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex')

/** A one-layer image in the dir: transport's layout, made from files. */
async function makeDirImage(dir: string): Promise<string> {
  const image = path.join(dir, 'image')
  const content = path.join(dir, 'rootfs')
  await mkdir(image, {recursive: true})
  await mkdir(content, {recursive: true})
  await writeFile(path.join(content, 'hello.txt'), 'hello\n')
  const tar = path.join(dir, 'layer.tar')
  await mustRun('tar', ['-C', content, '--owner=0', '--group=0', '--mtime=@0', '-cf', tar, 'hello.txt'])
  const layer = await readFile(tar)
  const layerDigest = sha256(layer)
  const config = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: [`sha256:${layerDigest}`]}, config: {}}))
  const configDigest = sha256(config)
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configDigest}`, size: config.length},
    layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layer.length}],
  }
  await writeFile(path.join(image, 'version'), 'Directory Transport Version: 1.1\n')
  await writeFile(path.join(image, layerDigest), layer)
  await writeFile(path.join(image, configDigest), config)
  await writeFile(path.join(image, 'manifest.json'), JSON.stringify(manifest))
  return image
}

/** What skopeo's output says about the policy. */
function classify(code: number, output: string): EngineAnswer {
  const message = output.replaceAll(/time="[^"]*" level=\w+ msg=/g, '').trim()
  if (/Error loading trust policy|invalid policy in/.test(output)) return {verdict: 'refuses', message}
  if (code === 0 || /Source image rejected/.test(output)) return {verdict: 'loads', message}
  return {verdict: 'unknown', message: `exit ${code}: ${message}`}
}

/**
 * Asks a skopeo about many policy files at once: one private mount namespace
 * (/etc and /var/lib overlaid, so its blob-info cache lands in a throw-away
 * layer), CONCURRENCY copies at a time.
 */
async function askSkopeo(skopeo: string, work: string, image: string, registriesD: string, files: string[]): Promise<Map<string, EngineAnswer>> {
  const tag = randomInt(1e9)
  const list = path.join(work, `list-${tag}`)
  await writeFile(list, files.map((f) => f + '\0').join(''))
  const one = `d="$1.dst${tag}"; mkdir -p "$d"; ${skopeo} --registries.d ${registriesD} --policy "$1" copy -q dir:${image} "dir:$d" >"$1.out${tag}" 2>&1; echo $? >"$1.rc${tag}"; rm -rf "$d"`
  const result = await runIsolated('sh', ['-c', `xargs -0 -P ${CONCURRENCY} -n 1 -a ${list} sh -c '${one}' one`], {env: {...process.env, TMPDIR: work}})
  assert.equal(result.code, 0, `${skopeo} batch failed: ${result.stderr}`)
  const answers = new Map<string, EngineAnswer>()
  for (const file of files) {
    const code = Number((await readFile(`${file}.rc${tag}`, 'utf8')).trim())
    answers.set(file, classify(code, await readFile(`${file}.out${tag}`, 'utf8')))
  }

  return answers
}

/** An oracle's load answers, in the engine's own words. */
async function askOracle(version: OracleVersion, files: string[]): Promise<Map<string, EngineAnswer>> {
  const loads = await oracleLoads(version, files)
  return new Map(
    files.map((file): [string, EngineAnswer] => {
      const error = loads.get(file)
      return [file, error === undefined ? {verdict: 'loads', message: 'loaded'} : {verdict: 'refuses', message: error}]
    }),
  )
}

/** Every engine generation the lab has, oldest first. */
async function labEngines(work: string, image: string, registriesD: string): Promise<Engine[]> {
  const features = (minor: number, source: string) => capabilitiesFor([5, minor], source).policy
  const labSkopeo = await labBin('skopeo')
  return [
    {id: DEBIAN_SKOPEO, features: features(23, 'skopeo 1.9.3'), ask: (files) => askSkopeo('skopeo', work, image, registriesD, files)},
    ...ORACLE_VERSIONS.map((v): Engine => ({id: `cimage-${v}`, features: features(Number(v.split('.')[1]), `oracle ${v}`), ask: (files) => askOracle(v, files)})),
    {id: 'skopeo-1.23', features: features(40, 'skopeo 1.23.0'), ask: (files) => askSkopeo(labSkopeo, work, image, registriesD, files)},
  ]
}

/** Our parser's answer, given the file's bytes (decoded as Go decodes them). */
function ours(bytes: Buffer, file: string, features: PolicyFeatures): OurAnswer {
  try {
    const {policy} = parsePolicy(bytes, file, {features})
    return {verdict: 'loads', message: '', serialized: serializePolicy(policy)}
  } catch (error) {
    if (error instanceof ParseError) return {verdict: 'refuses', message: error.message}
    return {verdict: 'crash', message: String((error as Error).stack ?? error)}
  }
}

/**
 * A .verdict file: a first line `loads` or `refuses` is Debian skopeo's
 * verdict (the format before the lab); `ENGINE: loads|refuses` lines name the
 * others; `#` lines are notes.
 */
function parseVerdicts(name: string, text: string): Map<string, Verdict> {
  const verdicts = new Map<string, Verdict>()
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const match = /^(?:([\w.-]+):\s*)?(loads|refuses)$/.exec(line)
    assert.ok(match && (match[1] || i === 0), `${name} line ${i + 1}: expected "loads", "refuses" or "ENGINE: loads|refuses"`)
    verdicts.set(match[1] ?? DEBIAN_SKOPEO, match[2] as Verdict)
  }

  return verdicts
}

async function loadFixtures(): Promise<Case[]> {
  const names = (await readdir(FIXTURES).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort()
  return Promise.all(
    names.map(async (name) => {
      const verdictFile = name.replace(/\.json$/, '.verdict')
      const expected = parseVerdicts(verdictFile, await readFile(path.join(FIXTURES, verdictFile), 'utf8'))
      return {name: `fixture ${name}`, bytes: await readFile(path.join(FIXTURES, name)), expected, fixture: name}
    }),
  )
}

/** Keeps a case we got wrong, with every engine's verdict, so every later run replays it. */
async function keep(c: Case, answers: Map<string, EngineAnswer>): Promise<void> {
  await mkdir(FIXTURES, {recursive: true})
  const base = `gen-${sha256(c.bytes).slice(0, 12)}`
  const lines = [...answers].flatMap(([id, a]) => (a.verdict === 'unknown' ? [] : [`${id}: ${a.verdict}`, `# ${id}: ${a.message.split('\n')[0]}`]))
  await writeFile(path.join(FIXTURES, `${base}.json`), c.bytes)
  await writeFile(path.join(FIXTURES, `${base}.verdict`), `# ${c.name}\n${lines.join('\n')}\n`)
}

interface EngineRun {
  engine: Engine
  answers: Map<string, EngineAnswer>
  ours: OurAnswer[]
  serialized: Map<string, {file: string; from: string}>
}

/** Our answers with this engine's features, the serializer's outputs, and the engine's answers on both. */
async function runEngine(engine: Engine, cases: Case[], files: string[], work: string): Promise<EngineRun> {
  const ourAnswers = cases.map((c, i) => ours(c.bytes, files[i], engine.features))
  const dir = path.join(work, `serialized-${engine.id}`)
  await mkdir(dir)
  const serialized = new Map<string, {file: string; from: string}>()
  for (const [i, answer] of ourAnswers.entries()) {
    if (answer.serialized === undefined || serialized.has(answer.serialized)) continue
    const file = path.join(dir, `s-${serialized.size}.json`)
    serialized.set(answer.serialized, {file, from: cases[i].name})
    await writeFile(file, answer.serialized)
  }

  const answers = await engine.ask([...files, ...[...serialized.values()].map((s) => s.file)])
  return {engine, answers, ours: ourAnswers, serialized}
}

/** The disagreements of one engine run, and the cases to keep. */
function judgeRun(run: EngineRun, cases: Case[], files: string[]): {problems: string[]; wrong: number[]; agree: number; engineLoads: number} {
  const {engine, answers} = run
  const problems: string[] = []
  const wrong: number[] = []
  let agree = 0
  let engineLoads = 0
  for (const [i, c] of cases.entries()) {
    const theirs = answers.get(files[i])!
    const mine = run.ours[i]
    const where = `${c.name}\n    file: ${c.bytes.toString('utf8').slice(0, 400)}`
    if (theirs.verdict === 'loads') engineLoads++
    if (theirs.verdict === 'unknown') {
      problems.push(`[${engine.id}] engine answer not understood for ${where}\n    engine: ${theirs.message}`)
      continue
    }

    const recorded = c.expected?.get(engine.id)
    if (recorded && recorded !== theirs.verdict) problems.push(`[${engine.id}] fixture verdict changed: ${c.fixture} says ${recorded}, the engine now says ${theirs.verdict}: ${theirs.message}`)
    if (mine.verdict === theirs.verdict) {
      agree++
      continue
    }

    const kind = mine.verdict === 'crash' ? 'our parser crashed on' : mine.verdict === 'loads' ? 'we LOAD, the engine REFUSES' : 'we REFUSE, the engine LOADS'
    problems.push(`[${engine.id}] ${kind}: ${where}\n    engine: ${theirs.message}\n    ours: ${mine.message}`)
    if (!c.fixture) wrong.push(i)
  }

  for (const [text, {file, from}] of run.serialized) {
    const theirs = answers.get(file)!
    if (theirs.verdict !== 'loads') problems.push(`[${engine.id}] the engine refuses what our serializer wrote (from ${from}):\n${text}\n    engine: ${theirs.message}`)
  }

  return {problems, wrong, agree, engineLoads}
}

describe('policy.json parity with every containers/image version in the lab', {timeout: 300_000}, () => {
  let work: string
  let image: string
  let etcBefore: string
  let registriesD: string
  const generator = {paths: {gpgKey: '', gpgKey2: '', keyData: ''}}

  before(async () => {
    etcBefore = await etcContainersDigest()
    work = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-parity-'))
    image = await makeDirImage(work)
    registriesD = path.join(work, 'registries.d')
    await mkdir(registriesD)
    const key = await makeGpgKey(work, 'parity')
    generator.paths.gpgKey = path.join(work, 'key.gpg')
    generator.paths.gpgKey2 = path.join(work, 'key2.gpg')
    await writeFile(generator.paths.gpgKey, key.publicArmored)
    await writeFile(generator.paths.gpgKey2, key.publicArmored)
    generator.paths.keyData = Buffer.from(key.publicArmored).toString('base64')
  })

  after(async () => {
    await rm(work, {recursive: true, force: true})
    assert.equal(await etcContainersDigest(), etcBefore, "the parity test touched this machine's /etc/containers or /var/lib/containers")
  })

  it(`loads exactly what each engine loads (seed ${SEED}, ${COUNT} generated cases + fixtures)`, async (t) => {
    const started = Date.now()
    console.log(`parity: seed ${SEED} (replay with IMAGETRUST_PARITY_SEED=${SEED})`)
    const gen = new PolicyGenerator(SEED, generator.paths)
    const cases: Case[] = [...Array.from({length: COUNT}, (_, i) => gen.next(i)), ...(await loadFixtures())]
    const casesDir = path.join(work, 'cases')
    await mkdir(casesDir)
    const files = await Promise.all(
      cases.map(async (c, i) => {
        const file = path.join(casesDir, `case-${i}.json`)
        await writeFile(file, c.bytes)
        return file
      }),
    )

    const runs: EngineRun[] = []
    for (const engine of await labEngines(work, image, registriesD)) runs.push(await runEngine(engine, cases, files, work))
    const problems: string[] = []
    const toKeep = new Set<number>()
    for (const run of runs) {
      const judged = judgeRun(run, cases, files)
      problems.push(...judged.problems)
      for (const i of judged.wrong) toKeep.add(i)
      const summary = `parity [${run.engine.id}]: ${cases.length} cases (${COUNT} generated, ${cases.length - COUNT} fixtures), loadable by the engine ${judged.engineLoads}, agree ${judged.agree}, disagree ${cases.length - judged.agree}; serializer outputs checked ${run.serialized.size}`
      console.log(summary)
      t.diagnostic(summary)
    }

    for (const i of toKeep) await keep(cases[i], new Map(runs.map((r) => [r.engine.id, r.answers.get(files[i])!])))
    console.log(`parity: ${runs.length} engines in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    if (toKeep.size > 0) console.log(`parity: kept ${toKeep.size} new failing case(s) in ${FIXTURES}`)
    assert.deepEqual(problems, [], `${problems.length} disagreement(s) (seed ${SEED}):\n\n${problems.join('\n\n')}`)
    assert.ok((await stat(FIXTURES)).isDirectory())
  })
})

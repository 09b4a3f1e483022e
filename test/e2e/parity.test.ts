/**
 * Parser parity, tested by difference: our strict policy.json parser must
 * load exactly the files real containers/image (skopeo 1.9.3, c/image 5.23)
 * loads. Each generated variant (seeded; IMAGETRUST_PARITY_SEED replays a
 * run) and each kept fixture goes to `skopeo --policy FILE copy dir: dir:`
 * on a tiny image built here; skopeo's message tells a policy that did not
 * load ("Error loading trust policy: invalid policy in ...") from one that
 * loaded and judged the image ("Source image rejected: ..."). Key files are
 * read lazily, at evaluation, so they never decide a load verdict.
 *
 * Every case we ever got wrong is written to test/fixtures/parity/ with the
 * engine's verdict, and every later run replays them. Every file our
 * serializer writes back must load too.
 */
import assert from 'node:assert/strict'
import {createHash, randomInt} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {capabilitiesFor} from '../../src/host/capabilities.ts'
import {ParseError} from '../../src/lib/errors.ts'
import {parsePolicy} from '../../src/policy/parse.ts'
import {serializePolicy} from '../../src/policy/serialize.ts'
import {makeGpgKey} from '../support/gpg.ts'
import {etcContainersDigest, mustRun, runIsolated} from '../support/lab.ts'
import {PolicyGenerator} from '../support/policy-gen.ts'

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/parity')
const SEED = process.env.IMAGETRUST_PARITY_SEED ? Number(process.env.IMAGETRUST_PARITY_SEED) : randomInt(2 ** 31)
const COUNT = Number(process.env.IMAGETRUST_PARITY_CASES ?? 350)
const CONCURRENCY = 4
/** Debian 12's skopeo 1.9.3 vendors containers/image 5.23. */
const FEATURES = capabilitiesFor([5, 23], 'skopeo 1.9.3').policy

type Verdict = 'loads' | 'refuses'

interface EngineAnswer {
  verdict: Verdict | 'unknown'
  message: string
}

interface OurAnswer {
  verdict: Verdict | 'crash'
  message: string
}

interface Case {
  name: string
  bytes: Buffer
  /** For fixtures: the engine verdict recorded when it was kept. */
  expected?: Verdict
  fixture?: string
}

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
 * Asks skopeo about many policy files at once: one private mount namespace
 * (/etc and /var/lib overlaid, so its blob-info cache lands in a throw-away
 * layer), CONCURRENCY copies at a time.
 */
async function askEngine(work: string, image: string, registriesD: string, files: string[]): Promise<Map<string, EngineAnswer>> {
  const list = path.join(work, `list-${randomInt(1e9)}`)
  await writeFile(list, files.map((f) => f + '\0').join(''))
  const one = `d="$1.dst"; mkdir -p "$d"; skopeo --registries.d ${registriesD} --policy "$1" copy -q dir:${image} "dir:$d" >"$1.out" 2>&1; echo $? >"$1.rc"; rm -rf "$d"`
  const result = await runIsolated('sh', ['-c', `xargs -0 -P ${CONCURRENCY} -n 1 -a ${list} sh -c '${one}' one`], {env: {...process.env, TMPDIR: work}})
  assert.equal(result.code, 0, `skopeo batch failed: ${result.stderr}`)
  const answers = new Map<string, EngineAnswer>()
  for (const file of files) {
    const code = Number((await readFile(`${file}.rc`, 'utf8')).trim())
    answers.set(file, classify(code, await readFile(`${file}.out`, 'utf8')))
  }

  return answers
}

/** Our parser's answer, given the file's bytes (decoded as Go decodes them). */
function ours(bytes: Buffer, file: string): OurAnswer & {serialized?: string} {
  try {
    const {policy} = parsePolicy(bytes, file, {features: FEATURES})
    return {verdict: 'loads', message: '', serialized: serializePolicy(policy)}
  } catch (error) {
    if (error instanceof ParseError) return {verdict: 'refuses', message: error.message}
    return {verdict: 'crash', message: String((error as Error).stack ?? error)}
  }
}

async function loadFixtures(): Promise<Case[]> {
  const names = (await readdir(FIXTURES).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort()
  return Promise.all(
    names.map(async (name) => {
      const verdictText = await readFile(path.join(FIXTURES, name.replace(/\.json$/, '.verdict')), 'utf8')
      const expected = verdictText.split('\n')[0].trim() as Verdict
      assert.ok(expected === 'loads' || expected === 'refuses', `${name}: bad .verdict file`)
      return {name: `fixture ${name}`, bytes: await readFile(path.join(FIXTURES, name)), expected, fixture: name}
    }),
  )
}

/** Keeps a case we got wrong, with the engine's verdict, so every later run replays it. */
async function keep(c: Case, engine: EngineAnswer): Promise<string> {
  await mkdir(FIXTURES, {recursive: true})
  const base = `gen-${sha256(c.bytes).slice(0, 12)}`
  await writeFile(path.join(FIXTURES, `${base}.json`), c.bytes)
  await writeFile(path.join(FIXTURES, `${base}.verdict`), `${engine.verdict}\n# ${c.name}\n# skopeo 1.9.3: ${engine.message.split('\n')[0]}\n`)
  return base
}

describe('policy.json parity with containers/image (skopeo 1.9.3)', {timeout: 120_000}, () => {
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

  it(`loads exactly what skopeo loads (seed ${SEED}, ${COUNT} generated cases + fixtures)`, async (t) => {
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

    const ourAnswers = cases.map((c, i) => ours(c.bytes, files[i]))
    // Every file the serializer writes from a policy we loaded must load in the engine too.
    const serializedDir = path.join(work, 'serialized')
    await mkdir(serializedDir)
    const serialized = new Map<string, {file: string; from: string}>()
    for (const [i, answer] of ourAnswers.entries()) {
      if (answer.serialized === undefined || serialized.has(answer.serialized)) continue
      serialized.set(answer.serialized, {file: path.join(serializedDir, `s-${serialized.size}.json`), from: cases[i].name})
    }

    for (const [text, {file}] of serialized) await writeFile(file, text)
    const engine = await askEngine(work, image, registriesD, [...files, ...[...serialized.values()].map((s) => s.file)])

    const problems: string[] = []
    let engineLoads = 0
    let agree = 0
    let kept = 0
    for (const [i, c] of cases.entries()) {
      const theirs = engine.get(files[i])!
      const mine = ourAnswers[i]
      if (theirs.verdict === 'loads') engineLoads++
      const where = `${c.name}\n    file: ${c.bytes.toString('utf8').slice(0, 400)}`
      if (theirs.verdict === 'unknown') {
        problems.push(`engine answer not understood for ${where}\n    skopeo: ${theirs.message}`)
        continue
      }

      if (c.expected && c.expected !== theirs.verdict) problems.push(`fixture verdict changed: ${c.fixture} says ${c.expected}, skopeo now says ${theirs.verdict}: ${theirs.message}`)
      if (mine.verdict === theirs.verdict) {
        agree++
        continue
      }

      const kind =
        mine.verdict === 'crash' ? 'our parser crashed on' : mine.verdict === 'loads' ? 'we LOAD, skopeo REFUSES' : 'we REFUSE, skopeo LOADS'
      problems.push(`${kind}: ${where}\n    skopeo: ${theirs.message}\n    ours: ${mine.message}`)
      if (!c.fixture) {
        await keep(c, theirs)
        kept++
      }
    }

    for (const [text, {file, from}] of serialized) {
      const theirs = engine.get(file)!
      if (theirs.verdict !== 'loads') problems.push(`skopeo refuses what our serializer wrote (from ${from}):\n${text}\n    skopeo: ${theirs.message}`)
    }

    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    const summary = `parity: ${cases.length} cases (${COUNT} generated, ${cases.length - COUNT} fixtures), loadable by engine ${engineLoads}, agree ${agree}, disagree ${cases.length - agree}; serializer outputs checked ${serialized.size}; ${seconds} s`
    console.log(summary)
    t.diagnostic(summary)
    if (kept) console.log(`parity: kept ${kept} new failing case(s) in ${FIXTURES}`)
    assert.deepEqual(problems, [], `${problems.length} disagreement(s) with skopeo (seed ${SEED}):\n\n${problems.join('\n\n')}`)
    assert.ok((await stat(FIXTURES)).isDirectory())
  })
})

/**
 * Every shell and YAML snippet in README.md and docs/*.md runs here, as
 * written: YAML snippets are trust files and must validate; shell snippets run
 * line by line in a private mount namespace (throw-away /etc and /var/lib),
 * with `imagetrust` on PATH. A line commented "# refuses" must fail; every
 * other line must succeed. A snippet is skipped only with a stated reason
 * (`<!-- snippet-test: skip: REASON -->` on the line before it).
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {validateTrustFile} from '../../src/trustfile/validate.ts'
import {loadYamlSource} from '../../src/trustfile/yaml-source.ts'
import {makeGpgKey, type MadeGpgKey} from '../support/gpg.ts'
import {REPO_ROOT, run} from '../support/lab.ts'

interface Snippet {
  file: string
  line: number
  lang: string
  text: string
  skip?: string
}

export async function snippets(file: string): Promise<Snippet[]> {
  const lines = (await readFile(file, 'utf8')).split('\n')
  const out: Snippet[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w+)\s*$/.exec(lines[i])
    if (!open) continue
    const indent = open[1].length
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]); j++) body.push(lines[j].slice(indent))
    const skip = /<!-- snippet-test: skip: (.+?) -->/.exec(lines[i - 1] ?? '')?.[1]
    out.push({file: path.relative(REPO_ROOT, file), line: i + 1, lang: open[2], text: `${body.join('\n')}\n`, skip})
    i = j
  }

  return out
}

const DOCS = async () => [path.join(REPO_ROOT, 'README.md'), ...(await readdir(path.join(REPO_ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => path.join(REPO_ROOT, 'docs', f))]
const EXAMPLE_FPR = '7C0142B7EA5C7977ADB07789C60D470ADECBC6C3'

describe('documentation snippets', () => {
  let dir: string
  let keyA: MadeGpgKey
  let keyB: MadeGpgKey
  const all: Snippet[] = []

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-docs-'))
    for (const file of await DOCS()) all.push(...(await snippets(file)))
    ;[keyA, keyB] = await Promise.all([makeGpgKey(dir, 'key-a'), makeGpgKey(dir, 'key-b')])
  })

  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('finds the snippets, and every skipped one says why', () => {
    assert.ok(all.filter((s) => s.lang === 'yaml').length >= 3)
    assert.ok(all.filter((s) => s.lang === 'sh').length >= 4)
    for (const s of all) assert.ok(['sh', 'yaml', 'json', 'text'].includes(s.lang), `${s.file}:${s.line}: unknown snippet language ${s.lang}`)
  })

  it('every YAML snippet is a valid trust file', async () => {
    const yaml = all.filter((s) => s.lang === 'yaml' && !s.skip)
    assert.ok(yaml.length > 0)
    for (const s of yaml) {
      try {
        validateTrustFile(await loadYamlSource(s.text, `${s.file}:${s.line}`))
      } catch (error) {
        assert.fail(`${s.file}:${s.line}: ${(error as Error).message}`)
      }
    }
  })

  /**
   * The host a doc's shell snippets start from: docs/key-rotation.md starts
   * from its first YAML snippet as /etc/imagetrust/trust.yaml, with key A's
   * real fingerprint in place of the example one.
   */
  async function setupFor(doc: string, work: string): Promise<{etc: Record<string, string>; env: Record<string, string>}> {
    if (doc === 'docs/key-rotation.md') {
      const first = all.find((s) => s.file === doc && s.lang === 'yaml')!
      await writeFile(path.join(work, 'b.asc'), keyB.publicArmored)
      return {
        etc: {'imagetrust/trust.yaml': first.text.replace(EXAMPLE_FPR, keyA.fingerprint), 'imagetrust/keys/key-a.asc': keyA.publicArmored},
        env: {B_FINGERPRINT: keyB.fingerprint},
      }
    }

    return {etc: {}, env: {}}
  }

  it('every shell snippet runs as written (in a private mount namespace)', async () => {
    const docs = [...new Set(all.filter((s) => s.lang === 'sh' && !s.skip).map((s) => s.file))]
    assert.ok(docs.length > 0)
    for (const doc of docs) {
      const work = await mkdtemp(path.join(dir, 'work-'))
      const bin = path.join(work, '.bin')
      await mkdir(bin)
      await writeFile(path.join(bin, 'imagetrust'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(REPO_ROOT, 'bin/run.js'))} "$@"\n`, {mode: 0o755})
      const {etc, env} = await setupFor(doc, work)
      const layer = path.join(work, '.layer')
      const setup = [
        `mkdir -p ${layer}/u ${layer}/w ${layer}/vu ${layer}/vw`,
        `mount -t overlay overlay -o lowerdir=/etc,upperdir=${layer}/u,workdir=${layer}/w /etc`,
        `mount -t overlay overlay -o lowerdir=/var/lib,upperdir=${layer}/vu,workdir=${layer}/vw /var/lib`,
        // A fresh host: no policy of this machine leaks in.
        'rm -rf /etc/containers/policy.json /etc/containers/registries.d /etc/imagetrust /var/lib/imagetrust /etc/pki/containers',
        'mkdir -p /etc/containers /etc/imagetrust/keys',
        `echo '{"default":[{"type":"insecureAcceptAnything"}]}' > /etc/containers/policy.json`,
        ...Object.entries(etc).map(([file, content]) => `cat > /etc/${file} <<'__SNIPPET_EOF__'\n${content.trimEnd()}\n__SNIPPET_EOF__`),
      ]
      const steps: Array<{command: string; refuses: boolean; where: string}> = []
      for (const s of all.filter((x) => x.file === doc && x.lang === 'sh' && !x.skip)) {
        const joined = s.text.replaceAll(/\\\n\s*/g, ' ')
        for (const [k, line] of joined.split('\n').entries()) {
          if (line.trim() === '' || line.trim().startsWith('#')) continue
          steps.push({command: line, refuses: /#\s*refuses\b/.test(line), where: `${s.file}:${s.line + 1 + k}`})
        }
      }

      const script = [
        'set -e',
        ...setup,
        'set +e',
        `cd ${work}`,
        ...steps.map((step, i) => `${step.command}\necho "@@step ${i} $?"`),
      ].join('\n')
      const result = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
        env: {...process.env, ...env, PATH: `${bin}:${process.env.PATH}`, HOME: work, GNUPGHOME: path.join(work, '.gnupg')},
      })
      const codes = new Map([...result.stdout.matchAll(/^@@step (\d+) (\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]))
      for (const [i, step] of steps.entries()) {
        const code = codes.get(i)
        assert.notEqual(code, undefined, `${step.where}: did not run\n${result.stderr}`)
        if (step.refuses) assert.notEqual(code, 0, `${step.where}: \`${step.command}\` should refuse\n${result.stdout}\n${result.stderr}`)
        else assert.equal(code, 0, `${step.where}: \`${step.command}\` exited ${code}\n${result.stdout}\n${result.stderr}`)
      }
    }
  })
})

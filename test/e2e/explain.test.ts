/**
 * explain must answer as containers/image does. Each row pulls with real
 * skopeo --debug (in a sandbox reading the row's policy.json and
 * registries.d) and compares the sections the engine logged with explain's.
 */
import assert from 'node:assert/strict'
import {mkdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Lab, imagetrust} from '../support/lab.ts'

interface Row {
  name: string
  scopes?: string[]
  registriesD?: string
  image: string
  /** Pull docker.io names from the lab registry (a registries.conf mirror): the policy still sees docker.io. */
  dockerHubMirror?: boolean
}

/** What the engine's debug log says it used. */
function engineChoice(log: string): {policy: string | null; lookaside: string; attachments: boolean} {
  const lines = log.split('\n')
  // " Using transport "docker" [specific ]policy section X" for a scope (X is \"\" for ""), "Using default policy section" otherwise.
  const section = lines.map((l) => /Using transport \\"docker\\" (?:specific )?policy section (.*?)"$/.exec(l)?.[1]).find((s) => s !== undefined)
  const policy = section === undefined ? null : section === '\\"\\"' ? '' : section
  // The section that supplied a value is the last one named before the "Using" line.
  const sectionFor = (topic: RegExp, using: RegExp): string => {
    let last = 'built-in'
    for (const line of lines) {
      const named = topic.exec(line)
      if (named) last = named[1] ?? 'default-docker'
      if (using.test(line)) return last
    }

    return 'built-in'
  }

  return {
    policy,
    lookaside: sectionFor(/Lookaside configuration: using (?:\\"docker\\" namespace (\S+?)"$|\\"default-docker\\")/, /Using \\"lookaside\\"/),
    // For the attachments switch the engine logs every section it visits, set or not,
    // and no line for the value itself: compare the value it acted on.
    attachments: lines.some((l) => /Looking for sigstore attachments/.test(l)),
  }
}

describe('explain matches the real engine', () => {
  let lab: Lab
  let digest = ''
  const rows: Row[] = []

  before(async () => {
    lab = await Lab.started('ite-')
    await lab.buildImage('localhost/e:1', 'explain')
    for (const repo of ['ns/app:1', 'ns/app:2', 'ns/app:latest', 'ns/sub/deep:1', 'other:1', 'library/busybox:1', 'library/alpine:1', 'busybox/tool:1']) {
      await lab.push('localhost/e:1', repo)
    }
    const head = await fetch(`http://${lab.registry}/v2/ns/app/manifests/1`, {
      method: 'HEAD',
      headers: {accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'},
    })
    digest = head.headers.get('docker-content-digest')!
    assert.match(digest, /^sha256:[0-9a-f]{64}$/)
    const R = lab.registry
    const L = `localhost:${lab.registryPort}`
    const U = lab.lookasideUrl
    rows.push(
      {name: 'exact tag scope wins', scopes: [`${R}/ns/app:1`, `${R}/ns/app`, `${R}/ns`, R], image: `${R}/ns/app:1`},
      {name: 'another tag falls to the repository', scopes: [`${R}/ns/app:1`, `${R}/ns/app`, `${R}/ns`, R], image: `${R}/ns/app:2`},
      {name: 'a parent namespace', scopes: [`${R}/ns`, R], image: `${R}/ns/sub/deep:1`},
      {name: 'the registry before any wildcard', scopes: [R, '*.0.0.1'], image: `${R}/other:1`},
      {name: 'the narrower wildcard, port ignored', scopes: ['*.0.1', '*.0.0.1'], image: `${R}/other:1`},
      {name: 'a port-less host does not match; transport default', scopes: ['127.0.0.1', ''], image: `${R}/other:1`},
      {name: 'nothing matches: the global default', scopes: ['127.0.0.1', '*.example.com'], image: `${R}/other:1`},
      {name: 'a digest scope for a pull by digest', scopes: [`${R}/ns/app@${digest}`, `${R}/ns`], image: `${R}/ns/app@${digest}`},
      {name: 'a digest scope is not used for a pull by tag', scopes: [`${R}/ns/app@${digest}`, `${R}/ns`], image: `${R}/ns/app:1`},
      {name: 'no tag means :latest', scopes: [`${R}/ns/app:latest`, `${R}/ns/app:1`], image: `${R}/ns/app`},
      {name: 'localhost is its own registry', scopes: [`${L}/ns`, `${R}/ns`], image: `${L}/ns/app:1`},
      {
        name: 'registries.d falls through per key to the parent section',
        registriesD: `docker:\n  "${R}":\n    lookaside: ${U}/a\n  "${R}/ns/app":\n    use-sigstore-attachments: false\n`,
        image: `${R}/ns/app:1`,
      },
      {name: 'registries.d: the most specific section with the key', registriesD: `docker:\n  "${R}":\n    lookaside: ${U}/a\n  "${R}/ns":\n    lookaside: ${U}/b\n`, image: `${R}/ns/app:1`},
      {name: 'registries.d: default-docker', registriesD: `default-docker:\n  lookaside: ${U}/d\ndocker:\n  other.example.com:\n    lookaside: ${U}/x\n`, image: `${R}/ns/app:1`},
      {name: 'registries.d: a wildcard section', registriesD: `docker:\n  "*.0.0.1":\n    lookaside: ${U}/w\n`, image: `${R}/other:1`},
      {name: 'registries.d: nothing set, the built-in default', registriesD: '', image: `${R}/other:1`},
      {
        name: 'a more specific foreign scope beats the registry scope (an override)',
        scopes: [R, `${R}/ns/app`],
        image: `${R}/ns/app:1`,
      },
      {name: 'a transport-wide "" beats the global default (an override of default: reject)', scopes: [''], image: `${R}/other:1`},
      {name: 'docker.io/busybox is docker.io/library/busybox', scopes: ['docker.io/busybox', 'docker.io/library/busybox'], image: 'docker.io/busybox:1', dockerHubMirror: true},
      {name: 'a docker.io/busybox scope never matches the official image', scopes: ['docker.io/busybox'], image: 'busybox:1', dockerHubMirror: true},
      {name: 'a docker.io/busybox scope is a namespace', scopes: ['docker.io/busybox', 'docker.io'], image: 'docker.io/busybox/tool:1', dockerHubMirror: true},
      {name: 'index.docker.io is docker.io', scopes: ['docker.io/library/alpine'], image: 'index.docker.io/alpine:1', dockerHubMirror: true},
      {name: 'index.docker.io scopes never match', scopes: ['index.docker.io/library/alpine', 'index.docker.io'], image: 'index.docker.io/library/alpine:1', dockerHubMirror: true},
      {
        name: 'registries.d: the attachments switch falls through to the registry section',
        registriesD: `docker:\n  "${R}":\n    use-sigstore-attachments: true\n  "${R}/ns":\n    lookaside: ${U}/n\n`,
        image: `${R}/ns/app:1`,
      },
    )
  })

  after(async () => {
    await lab?.stop()
  })

  it('agrees with skopeo on every table case, docker.io normalisation and overrides included', async () => {
    assert.ok(rows.length >= 10)
    for (const row of rows) {
      const root = path.join(lab.dir, 'root')
      await rm(root, {recursive: true, force: true})
      await mkdir(path.join(root, 'etc/containers/registries.d'), {recursive: true})
      const accept = [{type: 'insecureAcceptAnything'}]
      const docker = Object.fromEntries((row.scopes ?? []).map((s) => [s, accept]))
      await writeFile(path.join(root, 'etc/containers/policy.json'), JSON.stringify({default: accept, transports: {docker}}))
      if (row.registriesD !== undefined) await writeFile(path.join(root, 'etc/containers/registries.d/row.yaml'), row.registriesD)
      if (row.dockerHubMirror) {
        const mirror = `[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "${lab.registry}"\ninsecure = true\n`
        await writeFile(path.join(root, 'etc/containers/registries.conf'), `unqualified-search-registries = ["docker.io"]\n${mirror}`)
      }

      const pulled = await lab.inSandbox(root, ['skopeo', '--debug', 'copy', '--src-tls-verify=false', `docker://${row.image}`, `dir:${path.join(lab.dir, 'out')}`])
      await rm(path.join(lab.dir, 'out'), {recursive: true, force: true})
      assert.equal(pulled.code, 0, `${row.name}: ${pulled.stderr.split('\n').slice(-3).join('\n')}`)
      const engine = engineChoice(pulled.stderr)
      const explained = await imagetrust(['explain', row.image, '--root', root, '--json'])
      assert.equal(explained.code, 0, explained.stderr)
      const ours = JSON.parse(explained.stdout)
      assert.deepEqual(
        {policy: ours.policy.scope, lookaside: ours.registriesD.lookaside.section, attachments: ours.registriesD.sigstoreAttachments.value},
        engine,
        `${row.name} (${row.image})`,
      )
    }
  })

  it('names the keys behind the requirements, with fingerprints', async () => {
    const key = await lab.makeGpgKey('explainer')
    const root = path.join(lab.dir, 'keys-root')
    await mkdir(path.join(root, 'etc/pki/containers'), {recursive: true})
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await writeFile(path.join(root, 'etc/pki/containers/x.gpg'), key.publicArmored)
    const signedBy = {type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['/etc/pki/containers/x.gpg', '/etc/pki/containers/gone.gpg']}
    await writeFile(path.join(root, 'etc/containers/policy.json'), JSON.stringify({default: [{type: 'reject'}], transports: {docker: {[lab.registry]: [signedBy]}}}))
    const result = await imagetrust(['explain', `${lab.registry}/ns/app:1`, '--root', root, '--json'])
    assert.equal(result.code, 0, result.stderr)
    const ours = JSON.parse(result.stdout)
    assert.deepEqual(ours.policy.requirements, [signedBy])
    assert.deepEqual(ours.policy.keys[0].fingerprints, [key.fingerprint])
    assert.match(ours.policy.keys[1].error, /gone\.gpg does not exist: every pull under this scope fails/)
    const human = await imagetrust(['explain', `${lab.registry}/ns/app:1`, '--root', root])
    assert.match(human.stdout, new RegExp(`→ ${lab.registry.replaceAll('.', '\\.')}\\n`))
  })

  it('refuses an invalid image reference', async () => {
    const result = await imagetrust(['explain', 'Registry.example.com/UPPER:1', '--root', lab.dir])
    assert.equal(result.code, 1)
    assert.match(result.stderr, /invalid image reference "Registry\.example\.com\/UPPER:1"/)
  })
})

/**
 * The whole signing-and-enforcing workflow, automated and isolated on
 * loopback, cleaning up everything it started:
 * registry → GPG key → tiny image → podman push --sign-by → lookaside server →
 * imagetrust apply on a temp root → signed pull accepted, unsigned refused →
 * check in sync → hand edit → check reports drift.
 */
import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {Lab, REPO_ROOT, imagetrust} from '../test/support/lab.ts'

const step = (n: number, text: string) => console.log(`\n\u001B[1m[${n}/8] ${text}\u001B[0m`)
let failures = 0
function expect(ok: boolean, text: string): void {
  console.log(`  ${ok ? 'OK  ' : 'FAIL'} ${text}`)
  if (!ok) failures++
}

const lab = await Lab.create('imagetrust-demo-')
const stop = async () => {
  await lab.stop()
}

process.on('SIGINT', () => void stop().then(() => process.exit(130)))
try {
  step(1, 'start docker-registry on 127.0.0.1')
  await lab.startRegistry()
  console.log(`  registry at ${lab.registry}`)

  step(2, 'make a GPG key whose primary key signs')
  const key = await lab.makeGpgKey('demo')
  console.log(`  fingerprint ${key.fingerprint}`)

  step(3, 'build a tiny image from scratch')
  await lab.buildImage('localhost/imagetrust-demo:1', 'hello from imagetrust')

  step(4, 'podman push --sign-by, staging signatures in a lookaside directory')
  await lab.startLookasideServer()
  const signed = await lab.push('localhost/imagetrust-demo:1', 'demo/app:1', key)
  const unsigned = await lab.push('localhost/imagetrust-demo:1', 'demo/unsigned:1')
  console.log(`  pushed ${signed} (signed) and ${unsigned} (unsigned)`)

  step(5, `serve the signatures over HTTP on ${lab.lookasideUrl}`)
  const sigs = await fetch(`${lab.lookasideUrl}/`).then((r) => r.status)
  console.log(`  lookaside server answering (HTTP ${sigs} for /)`)

  step(6, 'write a trust file and imagetrust apply it to a temp root')
  const root = path.join(lab.dir, 'host-root')
  await mkdir(path.join(root, 'etc/containers'), {recursive: true})
  await copyFile(path.join(REPO_ROOT, 'test/fixtures/distro/debian12-policy.json'), path.join(root, 'etc/containers/policy.json'))
  await writeFile(path.join(lab.dir, 'demo.asc'), key.publicArmored)
  const template = await readFile(path.join(REPO_ROOT, 'templates/demo-trust.yaml'), 'utf8')
  const config = path.join(lab.dir, 'trust.yaml')
  await writeFile(
    config,
    template.replaceAll('@REGISTRY@', lab.registry).replaceAll('@LOOKASIDE@', lab.lookasideUrl).replaceAll('@FINGERPRINT@', key.fingerprint),
  )
  console.log(`  ${config}:\n${(await readFile(config, 'utf8')).replace(/^/gm, '    ')}`)
  const applied = await imagetrust(['apply', '--root', root, '-c', config])
  console.log(applied.stdout.replace(/^/gm, '  ') + applied.stderr)
  expect(applied.code === 0, 'imagetrust apply')

  step(7, 'pull the signed image (accepted) and the unsigned one (rejected)')
  for (const engine of ['podman', 'skopeo'] as const) {
    const good = await lab.pull(root, signed, engine)
    expect(good.code === 0, `${engine} pull ${signed} accepted${good.code === 0 ? '' : `: ${good.stderr.trim()}`}`)
    const bad = await lab.pull(root, unsigned, engine)
    expect(bad.code !== 0, `${engine} pull ${unsigned} rejected: ${bad.stderr.trim().split('\n').pop()}`)
  }

  step(8, 'check (in sync), edit policy.json by hand, check again (drift)')
  const inSync = await imagetrust(['check', '--root', root, '-c', config])
  expect(inSync.code === 0, `check: ${inSync.stdout.trim()} (exit ${inSync.code})`)
  const policyPath = path.join(root, 'etc/containers/policy.json')
  const policy = JSON.parse(await readFile(policyPath, 'utf8'))
  policy.default = [{type: 'insecureAcceptAnything'}]
  await writeFile(policyPath, JSON.stringify(policy, null, 4) + '\n')
  console.log('  edited default → insecureAcceptAnything')
  const drift = await imagetrust(['check', '--root', root, '-c', config])
  expect(drift.code === 2, `check: ${drift.stdout.trim().replaceAll('\n', ' ')} (exit ${drift.code})`)
} catch (error) {
  console.error(error)
  failures++
} finally {
  await stop()
  console.log('\nstopped the registry and lookaside server; removed the lab directory')
}

console.log(failures === 0 ? '\nDemo passed: the host enforces signatures.' : `\nDemo FAILED (${failures} step(s))`)
process.exitCode = failures === 0 ? 0 : 1

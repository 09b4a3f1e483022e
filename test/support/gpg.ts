/** Real GPG keys of every kind the key checks must judge, made by gpg itself in a throw-away home. */
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {mustRun} from './lab.ts'

export type GpgKind = 'ed25519' | 'rsa' | 'expired' | 'revoked' | 'subkey-signing' | 'no-signing' | 'expires-soon'

export interface MadeGpgKey {
  name: string
  home: string
  fingerprint: string
  publicArmored: string
  secretArmored: string
}

export async function makeGpgKey(dir: string, name: string, kind: GpgKind = 'ed25519'): Promise<MadeGpgKey> {
  const home = path.join(dir, `gnupg-${name}`)
  await mkdir(home, {recursive: true, mode: 0o700})
  const env = {...process.env, GNUPGHOME: home}
  const gpg = (args: string[], input?: string) => mustRun('gpg', ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {env, input})
  const uid = `${name} signer <${name}@example.test>`
  switch (kind) {
    case 'ed25519':
    case 'revoked': {
      await gpg(['--quick-gen-key', uid, 'ed25519', 'sign', 'never'])
      break
    }

    case 'rsa': {
      await gpg(['--quick-gen-key', uid, 'rsa2048', 'sign', 'never'])
      break
    }

    case 'expired': {
      // Made in 2020, valid for one day.
      await gpg(['--faked-system-time', '20200101T000000!', '--quick-gen-key', uid, 'ed25519', 'sign', '1d'])
      break
    }

    case 'expires-soon': {
      await gpg(['--quick-gen-key', uid, 'ed25519', 'sign', '10d'])
      break
    }

    case 'subkey-signing':
    case 'no-signing': {
      await gpg(['--quick-gen-key', uid, 'ed25519', 'cert', 'never'])
      break
    }
  }

  const listing = await mustRun('gpg', ['--batch', '--with-colons', '--list-keys'], {env})
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(listing.stdout)![1]
  if (kind === 'subkey-signing') await gpg(['--quick-add-key', fingerprint, 'ed25519', 'sign', 'never'])
  if (kind === 'no-signing') await gpg(['--quick-add-key', fingerprint, 'cv25519', 'encr', 'never'])
  if (kind === 'revoked') {
    // gpg wrote a revocation certificate at creation; it is guarded by a leading ':'.
    const cert = await readFile(path.join(home, 'openpgp-revocs.d', `${fingerprint}.rev`), 'utf8')
    await writeFile(path.join(home, 'revoke.asc'), cert.replace(/^:-----BEGIN/m, '-----BEGIN'))
    await gpg(['--import', path.join(home, 'revoke.asc')])
  }

  const publicArmored = (await mustRun('gpg', ['--batch', '--armor', '--export', fingerprint], {env})).stdout
  const secretArmored = (await gpg(['--armor', '--export-secret-keys', fingerprint])).stdout
  await stopGpgAgent(home)
  return {name, home, fingerprint, publicArmored, secretArmored}
}

/** gpg starts an agent per home that outlives the test; a later signature starts it again, so stop it after that use too. */
export async function stopGpgAgent(home: string): Promise<void> {
  await mustRun('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']).catch(() => undefined)
}

import {stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {runTool, ToolError} from '../exec/run-tool.js'
import type {Capabilities} from '../host/capabilities.js'
import {ImagetrustError, locationOf} from '../lib/errors.js'
import type {SignerSpec, TrustFile} from '../trustfile/types.js'
import type {LoadedKey} from './types.js'

/**
 * The signing host's key: its private half must be in the keyring and able to
 * sign, and its public half must be the key the pulling scopes trust. Only
 * gpg reads the keyring; no private key material passes through imagetrust.
 */
export interface SignerReport {
  fingerprint: string
  gnupgHome: string
  userIds: string[]
  /** The scopes this host signs for (those with lookasideStaging). */
  scopes: string[]
  /** A trial signature was made with the primary key (false: passphrase-protected, not tried). */
  testSigned: boolean
  warnings: string[]
}

/** Whether this host is the trust file's signing host: a signer without hosts: is every host that applies the file. */
export function isSigningHost(trust: TrustFile, hostname = os.hostname()): boolean {
  if (!trust.signer) return false
  const short = hostname.split('.')[0]
  return !trust.signer.hosts || trust.signer.hosts.some((h) => h === hostname || h === short)
}

/** The keyring directory: gnupgHome as written (~/ and relative to the trust file), else $GNUPGHOME, else ~/.gnupg. */
export function gnupgHomeOf(signer: Pick<SignerSpec, 'gnupgHome'>, trustDir: string): string {
  const given = signer.gnupgHome
  if (given === undefined) return process.env.GNUPGHOME || path.join(os.homedir(), '.gnupg')
  if (given === '~' || given.startsWith('~/')) return path.join(os.homedir(), given.slice(1))
  return path.resolve(trustDir, given)
}

interface SecretKey {
  fingerprint: string
  validity: string
  capabilities: string
  /** '#': only a stub (the secret is offline); '+' or a serial number: usable. */
  secret: string
  userIds: string[]
  subkeys: Array<{fingerprint: string; capabilities: string; validity: string; secret: string}>
}

/** Parses `gpg --with-colons --fixed-list-mode --list-secret-keys`. */
export function parseSecretKeys(colons: string): SecretKey[] {
  const keys: SecretKey[] = []
  let pending: {kind: 'sec' | 'ssb'; fields: string[]} | undefined
  for (const line of colons.split('\n')) {
    const f = line.split(':')
    if (f[0] === 'sec' || f[0] === 'ssb') pending = {kind: f[0], fields: f}
    else if (f[0] === 'fpr' && pending) {
      const base = {fingerprint: f[9].toUpperCase(), validity: pending.fields[1], capabilities: pending.fields[11] ?? '', secret: pending.fields[14] ?? ''}
      if (pending.kind === 'sec') keys.push({...base, userIds: [], subkeys: []})
      else keys.at(-1)?.subkeys.push(base)
      pending = undefined
    } else if (f[0] === 'uid' && keys.length > 0) keys.at(-1)!.userIds.push(f[9])
  }

  return keys
}

const gpgArgs = (home: string) => ['--homedir', home, '--batch', '--no-tty']

/** The scopes the signer signs for, and the fingerprints each trusts. */
function signedScopes(trust: TrustFile, keys: LoadedKey[]) {
  const byName = new Map(keys.map((k) => [k.name, k]))
  return trust.scopes
    .filter((s) => s.lookasideStaging)
    .map((s) => ({scope: s.scope, line: s.line, trusted: s.keys.flatMap((n) => byName.get(n)?.keys.map((k) => k.fingerprint) ?? [])}))
}

export async function checkSigner(trust: TrustFile, keys: LoadedKey[], capabilities: Capabilities): Promise<SignerReport> {
  const signer = trust.signer!
  const location = locationOf(trust.file, signer)
  const fpr = signer.fingerprint
  const home = gnupgHomeOf(signer, trust.dir)
  const scopes = signedScopes(trust, keys)
  const trustedAll = [...new Set(scopes.flatMap((s) => s.trusted))]
  const fail = (message: string, hint?: string): never => {
    throw new ImagetrustError(message, {location, hint})
  }

  // The public half first: the pulling scopes must trust this very key.
  for (const s of scopes) {
    if (!s.trusted.includes(fpr)) {
      fail(
        `the signer's key ${fpr} is not the key that scope "${s.scope}" trusts (${s.trusted.join(', ') || 'none'}): pulling hosts would reject every signature this host makes`,
        'Set signer.fingerprint to the trusted key, or add the signer\'s public key to the scope\'s keys.',
      )
    }
  }

  if (!(await stat(home).then((s) => s.isDirectory(), () => false))) {
    fail(`the signer's keyring ${home} does not exist: no private key for ${fpr} (the key scope(s) ${scopes.map((s) => `"${s.scope}"`).join(', ')} trust: ${trustedAll.join(', ')})`, 'Set signer.gnupgHome, or make the key with imagetrust key create.')
  }

  let listing: string
  try {
    listing = (await runTool('gpg', [...gpgArgs(home), '--with-colons', '--fixed-list-mode', '--list-secret-keys'], {timeoutMs: 30_000})).stdout
  } catch (error) {
    if (!(error instanceof ToolError) || !error.result) throw error
    listing = error.result.stdout
  }

  const secrets = parseSecretKeys(listing)
  const key = secrets.find((k) => k.fingerprint === fpr)
  if (!key) {
    const owner = secrets.find((k) => k.subkeys.some((s) => s.fingerprint === fpr))
    if (owner) fail(`signer.fingerprint ${fpr} is a subkey of ${owner.fingerprint}: name the primary key (containers/image before 5.37 rejects subkey signatures)`)
    const present = secrets.map((k) => `${k.fingerprint} (${k.userIds[0] ?? 'no user ID'})`)
    fail(
      `no private key for the signer's key ${fpr} in ${home}; the trusted key is ${trustedAll.join(', ')}. ${present.length > 0 ? `The keyring holds private keys ${present.join(', ')}` : 'The keyring holds no private key'}: a push with --sign-by ${fpr} would fail`,
      'Import the private key into that keyring (gpg --import), or point signer.gnupgHome at the keyring that has it.',
    )
  }

  const k = key!
  if (k.secret === '#') fail(`the private primary key ${fpr} in ${home} is only a stub (its secret part is offline): this host cannot sign with it`)
  if (k.validity === 'r') fail(`the signer's key ${fpr} is revoked`)
  if (k.validity === 'e') fail(`the signer's key ${fpr} has expired`)
  const warnings: string[] = []
  if (!/s/.test(k.capabilities)) {
    const signingSub = k.subkeys.find((s) => /s/.test(s.capabilities) && s.validity !== 'e' && s.validity !== 'r')
    if (!signingSub) fail(`the signer's key ${fpr} cannot sign (capabilities "${k.capabilities}")`)
    if (!capabilities.subkeySignatures) {
      fail(`the signer's key ${fpr} signs only with subkey ${signingSub!.fingerprint}; containers/image ${capabilities.containersImage} (${capabilities.source}) rejects subkey signatures (5.37+ accepts them)`, 'Make a key whose primary key signs: imagetrust key create.')
    }

    warnings.push(`the signer's key ${fpr} signs with subkey ${signingSub!.fingerprint}: engines with containers/image before 5.37 reject such signatures`)
  }

  // A trial signature with exactly the primary key ("!"), as podman push --sign-by makes it; nothing is written.
  let testSigned = true
  const trial = await runTool('gpg', [...gpgArgs(home), '--pinentry-mode', 'error', '--local-user', `${fpr}!`, '--detach-sign', '--output', '-'], {
    input: 'imagetrust signing check\n',
    allowFailure: true,
    timeoutMs: 30_000,
  })
  if (trial.exitCode !== 0) {
    if (/pinentry|passphrase/i.test(trial.stderr)) {
      testSigned = false
      warnings.push(`the private key ${fpr} is protected by a passphrase, so apply did not test-sign with it; podman push --sign-by asks for it (or use --sign-passphrase-file)`)
    } else fail(`gpg cannot sign with the signer's key ${fpr} in ${home}: ${trial.stderr.trim().split('\n').slice(-2).join('; ')}`)
  }

  return {fingerprint: fpr, gnupgHome: home, userIds: k.userIds, scopes: scopes.map((s) => s.scope), testSigned, warnings}
}

import {mkdir, stat} from 'node:fs/promises'
import path from 'node:path'

import {runTool} from '../exec/run-tool.js'
import type {Capabilities} from '../host/capabilities.js'
import {EXIT, ImagetrustError} from '../lib/errors.js'
import {loadTrustFile} from '../trustfile/load.js'
import {KEY_NAME} from '../trustfile/validate.js'
import {type AddKeyResult, addKey} from './manage.js'

/**
 * `key create`: a new signing key made by gpg itself, in batch mode, in the
 * signing host's keyring. The primary key signs (no signing subkey):
 * containers/image before 5.37 rejects signatures made by a subkey. Only the
 * public half leaves the keyring: exported, checked and pinned into the trust file.
 */
export const ALGORITHMS = ['ed25519', 'rsa3072', 'rsa4096'] as const
export type Algorithm = (typeof ALGORITHMS)[number]
const EXPIRY = /^(?:never|\d+[dwmy]?|\d{4}-\d{2}-\d{2})$/

export interface CreateKeyOptions {
  trustFile: string
  name: string
  gnupgHome: string
  algorithm: Algorithm
  /** gpg's expiry: 2y, 6m, 90d, 2030-01-01 or never. */
  expires: string
  uid?: string
  /** Protect the private key with the passphrase in this file; without it the key has none (unattended signing). */
  passphraseFile?: string
  scopes?: string[]
  capabilities: Capabilities
}

export interface CreateKeyResult extends AddKeyResult {
  fingerprint: string
  gnupgHome: string
  algorithm: Algorithm
  expires: string
  uid: string
  passphrase: boolean
}

export async function createSigningKey(options: CreateKeyOptions): Promise<CreateKeyResult> {
  const {name} = options
  if (!KEY_NAME.test(name)) throw new ImagetrustError(`key name "${name}" must match ${KEY_NAME.source} (it becomes a file name)`)
  if (!EXPIRY.test(options.expires)) throw new ImagetrustError(`--expires ${options.expires}: give a period (2y, 6m, 90d), a date (2030-01-01) or never`)
  // Before gpg makes anything: the name must be free in the trust file.
  if (await stat(options.trustFile).then(() => true, () => false)) {
    const trust = await loadTrustFile(options.trustFile)
    if (trust.keys.some((k) => k.name === name)) throw new ImagetrustError(`key "${name}" is already in ${options.trustFile}; remove it first, or create the new key under another name`)
  }

  const home = path.resolve(options.gnupgHome)
  await mkdir(home, {recursive: true, mode: 0o700})
  const uid = options.uid ?? `${name} (imagetrust signing key)`
  // eslint-disable-next-line no-control-regex
  if (uid.trim() === '' || /[\u0000-\u001f\u007f]/.test(uid)) throw new ImagetrustError(`--uid ${JSON.stringify(uid)}: a user ID must be one line of printable text`, {exitCode: EXIT.usage})
  const secret = options.passphraseFile ? ['--passphrase-file', path.resolve(options.passphraseFile)] : ['--passphrase', '']
  // gpg's options end with '--' before every value a user gave (the user ID).
  const base = ['--homedir', home, '--batch', '--no-tty']
  const made = await runTool('gpg', [...base, '--status-fd', '1', '--pinentry-mode', 'loopback', ...secret, '--quick-gen-key', '--', uid, options.algorithm, 'sign', options.expires], {timeoutMs: 120_000})
  const fingerprint = /^\[GNUPG:\] KEY_CREATED [PB] ([0-9A-F]{40,64})$/m.exec(made.stdout)?.[1]
  if (!fingerprint) throw new ImagetrustError(`gpg did not report the key it created:\n  ${made.stdout.trim()}`)
  const exported = await runTool('gpg', [...base, '--armor', '--export', '--', fingerprint])
  try {
    const added = await addKey({trustFile: options.trustFile, name, bytes: Buffer.from(exported.stdout), type: 'gpg', fingerprints: [fingerprint], scopes: options.scopes, capabilities: options.capabilities})
    return {...added, fingerprint, gnupgHome: home, algorithm: options.algorithm, expires: options.expires, uid, passphrase: Boolean(options.passphraseFile)}
  } catch (error) {
    throw new ImagetrustError(`${(error as Error).message}\n(the key ${fingerprint} was created in ${home}; add it later with gpg --homedir ${home} --export --armor ${fingerprint} | imagetrust key add ${name} -)`, {cause: error})
  }
}

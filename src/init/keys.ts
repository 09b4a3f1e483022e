import path from 'node:path'

import {runTool} from '../exec/run-tool.js'
import {MiB, readRegularFile} from '../fs/read-bounded.js'
import type {Capabilities} from '../host/capabilities.js'
import {ImagetrustError} from '../lib/errors.js'
import {withProgress} from '../lib/progress.js'
import {describeKeyBytes} from '../keys/load.js'
import {guessKeyType} from '../keys/manage.js'
import {fetchKey, KEY_SIZE_LIMIT} from '../keys/source.js'
import type {KeyInfo} from '../keys/types.js'
import {KEY_NAME} from '../trustfile/validate.js'
import type {InitKey} from './types.js'

/** A public key in the invoking user's GnuPG keyring ($GNUPGHOME). */
export interface KeyringEntry {
  fingerprint: string
  userIds: string[]
  algorithm: string
  expires?: string
  canSign: boolean
}

const GPG_ALGOS: Record<string, string> = {1: 'rsa', 16: 'elgamal', 17: 'dsa', 18: 'ecdh', 19: 'ecdsa', 22: 'eddsa'}

export async function listKeyring(): Promise<KeyringEntry[]> {
  const result = await runTool('gpg', ['--batch', '--with-colons', '--fixed-list-mode', '--list-keys'], {allowFailure: true, timeoutMs: 30_000}).catch(() => undefined)
  if (!result || result.exitCode !== 0) return []
  const entries: KeyringEntry[] = []
  let current: KeyringEntry | undefined
  let inPrimary = false
  for (const line of result.stdout.split('\n')) {
    const f = line.split(':')
    if (f[0] === 'pub') {
      current = {fingerprint: '', userIds: [], algorithm: `${GPG_ALGOS[f[3]] ?? `algo ${f[3]}`}${f[2] ? ` ${f[2]}` : ''}`, canSign: /s/.test(f[11] ?? ''), expires: f[6] ? new Date(Number(f[6]) * 1000).toISOString() : undefined}
      // revoked (r) or expired (e) keys are never offered.
      if (f[1] === 'r' || f[1] === 'e') current = undefined
      else entries.push(current)
      inPrimary = true
    } else if (f[0] === 'fpr' && current && inPrimary && !current.fingerprint) {
      current.fingerprint = f[9]
    } else if (f[0] === 'uid' && current) {
      current.userIds.push(f[9].replaceAll('\\x3a', ':'))
    } else if (f[0] === 'sub') {
      inPrimary = false
    }
  }

  return entries.filter((e) => e.fingerprint)
}

export async function exportFromKeyring(id: string): Promise<Uint8Array> {
  const result = await runTool('gpg', ['--batch', '--armor', '--export', '--export-options', 'export-minimal', '--', id], {timeoutMs: 30_000})
  if (!result.stdout.includes('BEGIN PGP PUBLIC KEY BLOCK')) throw new ImagetrustError(`no public key "${id}" in the GnuPG keyring (${process.env.GNUPGHOME ?? '~/.gnupg'})`)
  return Buffer.from(result.stdout, 'utf8')
}

/**
 * A key source as --key takes it (and the prompts produce it): gpg:ID for the
 * GnuPG keyring, an https:// URL (pinned with --fingerprint), armor, or a file.
 */
export async function readInitKeySource(source: string, options: {fingerprint?: string; quiet?: boolean}): Promise<{bytes: Uint8Array; origin: string}> {
  if (source.startsWith('gpg:')) return {bytes: await exportFromKeyring(source.slice(4)), origin: `GnuPG keyring (${source.slice(4)})`}
  if (/^http:\/\//i.test(source)) throw new ImagetrustError(`refusing ${source}: keys are only fetched over https://`)
  if (/^https:\/\//i.test(source)) {
    return {bytes: await withProgress(`fetching ${source}`, () => fetchKey(source, source), {quiet: options.quiet}), origin: source}
  }

  if (source.trimStart().startsWith('-----BEGIN')) return {bytes: Buffer.from(source, 'utf8'), origin: 'pasted armor'}
  try {
    return {bytes: (await readRegularFile(source, KEY_SIZE_LIMIT)).content, origin: path.resolve(source)}
  } catch (error) {
    if (error instanceof ImagetrustError) throw new ImagetrustError(`key file ${error.message} (keys are read up to ${KEY_SIZE_LIMIT / MiB} MiB)`)
    throw new ImagetrustError(`cannot read key file ${path.resolve(source)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

/** A key name from its first user ID (the e-mail's local part, or the name), made safe as a file name. */
export function suggestKeyName(keys: KeyInfo[], taken: Set<string>): string {
  const uid = keys[0]?.userIds[0] ?? ''
  const email = /<([^@>]+)@/.exec(uid)?.[1]
  const base =
    (email ?? uid.replace(/<.*$/, '').trim())
      .toLowerCase()
      .replaceAll(/[^a-z0-9._-]+/g, '-')
      .replaceAll(/^[^a-z0-9]+|[-._]+$/g, '')
      .slice(0, 40) || 'key'
  let name = base
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`
  return KEY_NAME.test(name) ? name : 'key'
}

/** Checks key bytes the way key add does (secret, expired, revoked, non-signing keys refused; a pin must match). */
export async function checkInitKey(bytes: Uint8Array, options: {name: string; pin?: string[]; capabilities: Capabilities; origin: string}): Promise<InitKey> {
  const type = guessKeyType(bytes)
  const pins = options.pin?.map((f) => f.replaceAll(/\s/g, '').toUpperCase())
  const described = await describeKeyBytes(bytes, {name: options.name, type, fingerprints: pins}, options.capabilities)
  if (described.problems.length > 0) throw new ImagetrustError(described.problems.join('\n'))
  return {
    name: options.name,
    type,
    content: described.content,
    fingerprints: described.keys.map((k) => k.fingerprint),
    keys: described.keys,
    origin: options.origin,
    warnings: described.warnings,
  }
}

export function formatKey(key: Pick<InitKey, 'keys' | 'origin' | 'type'>): string {
  const lines = [`  from ${key.origin} (${key.type})`]
  for (const k of key.keys) {
    lines.push(`  fingerprint: ${k.fingerprint.replaceAll(/(.{4})/g, '$1 ').trim()}`)
    lines.push(`  user IDs:    ${k.userIds.join(', ') || '(none)'}`)
    lines.push(`  algorithm:   ${k.algorithm}`)
    lines.push(`  expires:     ${k.expires ?? 'never'}`)
  }

  return lines.join('\n')
}

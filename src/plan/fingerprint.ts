import {createHash} from 'node:crypto'
import {lstat, readdir, readlink, rm} from 'node:fs/promises'
import path from 'node:path'

import type {EngineInfo} from '../host/detect.js'
import type {HostRoot} from '../host/paths.js'
import type {KeyInfo} from '../keys/types.js'
import type {KeyKind} from '../trustfile/types.js'
import type {Expiring} from '../trustfile/expiry.js'
import type {DriftEntry} from './drift.js'
import {writeFileAtomic} from '../fs/atomic.js'
import {MiB, readBoundedText, readRegularFile} from '../fs/read-bounded.js'

/**
 * The inputs of the last apply, hashed, so that `check` can answer "in sync"
 * without parsing anything when nothing changed since. plan() is a pure
 * function of these inputs, and after apply its result is empty, so equal
 * inputs mean an empty plan. Any difference (or a missing fingerprint) sends
 * check down the full path. Kept apart from the state file so that it never
 * changes what plan() sees. Imports only node built-ins: check starts fast.
 */
export interface InputSet {
  /** Files whose content and mode count, as real paths (absent files count too). */
  files: string[]
  /** Directories whose listing counts, and the files in them with these endings. */
  dirs: Array<{dir: string; suffixes: string[]}>
}

export interface Fingerprint {
  /** 3: the inputs include every registries.d directory an engine reads (older ones missed /usr/share's). */
  version: 3
  /** The trust file (real path) this fingerprint is for. */
  trustFile: string
  digest: string
  inputs: InputSet
  warnings: string[]
  /** What the full check reported for these inputs, keys aside (overridden rules, shadowing files). */
  drift: DriftEntry[]
  keys: Array<{name: string; hostPath: string; keys: KeyInfo[]; type?: KeyKind}>
  /** The trust file's entries with an until (expired ones too: check reports them). */
  expiries: Expiring[]
  /** The next until after the apply: from then on the plan differs, so the fingerprint no longer holds. */
  validUntil?: string
  /**
   * The engines the plan was made for, as their `--version` described them.
   * The digest's context stamps each binary (path, inode, size, mtime), so
   * while the fingerprint holds they are these: status need not run them.
   */
  engines?: EngineInfo[]
  /**
   * What status reuses from this record (keys, untils, engines) depends on
   * fewer inputs than the plan: the trust file, its key files, the installed
   * keys. Their own digest (same context) lets status reuse them without
   * hashing every input, and on a host that drifted elsewhere.
   */
  reused?: {inputs: InputSet; digest: string}
}

const FINGERPRINT_FILE = 'fingerprint.json'
/** The same limit as the full read of host files (host/snapshot.ts): policy.json, registries.d, keys, the trust file. */
const INPUT_LIMIT = 16 * MiB

export function fingerprintPath(root: HostRoot): string {
  return root.resolve(path.posix.join(root.layout.stateDir, FINGERPRINT_FILE))
}

/** Where apply leaves the policy and registries.d files as it parsed them, for status (host/parse-cache.ts). */
export function parseCachePath(root: HostRoot): string {
  return root.resolve(path.posix.join(root.layout.stateDir, 'parse-cache.json'))
}

async function fileEntry(hash: ReturnType<typeof createHash>, file: string | Buffer, root: HostRoot): Promise<void> {
  const info = await lstat(file).catch(() => undefined)
  hash.update('\0file ')
  hash.update(file)
  if (!info) {
    hash.update('\0absent')
    return
  }

  hash.update(`\0${info.isSymbolicLink() ? 'link' : 'file'} ${info.mode & 0o7777} ${info.uid}:${info.gid}\0`)
  const target = info.isSymbolicLink() ? await readlink(file, {encoding: 'buffer'}).catch(() => Buffer.alloc(0)) : undefined
  if (target) hash.update(Buffer.concat([Buffer.from('-> '), target, Buffer.from('\0')]))
  const readable = target && root.isSandbox ? followedInRoot(file, root) : file
  // Bounded like every read: a FIFO or a huge file put there since apply only
  // changes the digest (and the full check then says what is wrong); it never blocks or fills memory.
  hash.update(
    readable === undefined
      ? Buffer.from('\0not followed')
      : await readRegularFile(readable, INPUT_LIMIT).then(
          (r) => r.content,
          (error: NodeJS.ErrnoException) => Buffer.from(`\0unreadable ${error.code ?? ''} ${info.size} ${info.mtimeMs} ${info.ino}`),
        ),
  )
}

/**
 * Under --root, a symlink's target names a host path: it is followed in the
 * root, as every other read is, never to the file of that name on this
 * machine. A name that is not UTF-8, or a file outside the root (a trust
 * file given with --config), is not followed: its target text is hashed.
 */
function followedInRoot(file: string | Buffer, root: HostRoot): string | undefined {
  const name = typeof file === 'string' ? file : file.toString('utf8')
  if (typeof file !== 'string' && !Buffer.from(name).equals(file)) return undefined
  if (!name.startsWith(`${root.root}/`)) return undefined
  try {
    return root.resolveFull(name.slice(root.root.length))
  } catch {
    return undefined // a loop: the target text stands for it
  }
}

/** One digest over every input; `context` carries what is not a file (versions, layout). */
export async function digestInputs(inputs: InputSet, context: string, root: HostRoot): Promise<string> {
  const hash = createHash('sha256')
  hash.update(context)
  for (const file of inputs.files) await fileEntry(hash, file, root)
  for (const {dir, suffixes} of inputs.dirs) {
    // Names as bytes: one that is not UTF-8 is an input too.
    const names = await readdir(dir, {encoding: 'buffer'}).catch(() => null)
    hash.update(`\0dir ${dir} ${names === null ? 'absent' : ''}`)
    for (const name of (names ?? []).sort(Buffer.compare)) hash.update(Buffer.concat([name, Buffer.from('/')]))
    for (const name of (names ?? []).filter((n) => suffixes.some((s) => n.toString('latin1').endsWith(s)))) await fileEntry(hash, Buffer.concat([Buffer.from(`${dir}/`), name]), root)
  }

  return hash.digest('hex')
}

export async function writeFingerprint(root: HostRoot, fingerprint: Fingerprint): Promise<void> {
  const text = JSON.stringify(fingerprint, null, 2) + '\n'
  const current = await readBoundedText(fingerprintPath(root), INPUT_LIMIT).catch(() => null)
  if (current !== text) await writeFileAtomic(fingerprintPath(root), text, {mode: 0o644})
}

export async function readFingerprint(root: HostRoot): Promise<Fingerprint | undefined> {
  const text = await readBoundedText(fingerprintPath(root), INPUT_LIMIT).catch(() => null)
  if (!text) return undefined
  try {
    const value = JSON.parse(text) as Fingerprint
    if (!(value.version === 3 && typeof value.digest === 'string' && Array.isArray(value.drift) && Array.isArray(value.warnings) && Array.isArray(value.expiries))) return undefined
    const {reused} = value
    const reusable = typeof reused?.digest === 'string' && Array.isArray(reused.inputs?.files) && Array.isArray(reused.inputs.dirs)
    if (!reusable) delete value.reused
    return value
  } catch {
    return undefined
  }
}

/** Whether the digest that vouches for what status reuses (its own, or every input) covers these inputs. */
export function reusedCovers(fingerprint: Fingerprint, inputs: InputSet): boolean {
  const covered = fingerprint.reused?.inputs ?? fingerprint.inputs
  const dirs = new Set(covered.dirs.map((d) => `${d.dir}\0${d.suffixes.join(',')}`))
  return inputs.files.every((f) => covered.files.includes(f)) && inputs.dirs.every((d) => dirs.has(`${d.dir}\0${d.suffixes.join(',')}`))
}

/** The engines a holding fingerprint recorded, when it recorded them (older ones did not). */
export function recordedEngines(fingerprint: Fingerprint): EngineInfo[] | undefined {
  const {engines} = fingerprint
  if (!Array.isArray(engines)) return undefined
  // An engine whose --version failed during apply is asked again: the failure may have been a passing one.
  const valid = engines.every((e) => typeof e?.name === 'string' && typeof e.path === 'string' && typeof e.version === 'string' && e.version !== 'unknown')
  return valid ? engines : undefined
}

export async function removeFingerprint(root: HostRoot): Promise<void> {
  await rm(fingerprintPath(root), {force: true})
}

/** The record for this trust file, while no until has passed since it was made. */
async function currentFingerprint(root: HostRoot, trustFile: string, now: Date): Promise<Fingerprint | undefined> {
  const fingerprint = await readFingerprint(root)
  if (!fingerprint || fingerprint.trustFile !== path.resolve(trustFile)) return undefined
  if (fingerprint.validUntil !== undefined && !(now.getTime() < Date.parse(fingerprint.validUntil))) return undefined
  return fingerprint
}

/** Still true when every input hashes as it did after the last apply, and no until has passed since. */
export async function fingerprintHolds(root: HostRoot, trustFile: string, context: string, now = new Date()): Promise<Fingerprint | undefined> {
  const fingerprint = await currentFingerprint(root, trustFile, now)
  if (!fingerprint) return undefined
  return (await digestInputs(fingerprint.inputs, context, root)) === fingerprint.digest ? fingerprint : undefined
}

/**
 * The record, when what status reuses from it (keys, untils, engines) still
 * holds: its own inputs hash as they did (every input, for a record made
 * before it had them), and no until has passed. The rest of it (drift,
 * warnings) may be stale: only check's fingerprintHolds vouches for that.
 */
export async function reusableFingerprint(root: HostRoot, trustFile: string, context: string, now = new Date()): Promise<Fingerprint | undefined> {
  const fingerprint = await currentFingerprint(root, trustFile, now)
  if (!fingerprint) return undefined
  const {inputs, digest} = fingerprint.reused ?? fingerprint
  return (await digestInputs(inputs, context, root)) === digest ? fingerprint : undefined
}

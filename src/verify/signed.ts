import {stat} from 'node:fs/promises'
import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import type {HostRoot} from '../host/paths.js'
import {loadKeys} from '../keys/load.js'
import {ImagetrustError} from '../lib/errors.js'
import {dockerScopeChain} from '../policy/match.js'
import {stagingHostPath} from '../plan/staging.js'
import type {TrustFile} from '../trustfile/types.js'
import {deadline} from '../registry/limits.js'
import {pulledReference} from './identity.js'
import {checkSignature, fetchManifestDigest, lookasideSignatures, type NativeSignature, Unreachable} from './native.js'
import {VERIFY_EXIT} from './verify.js'

/**
 * verify --signed: run on the signing host after a push. It reads the image
 * as a pulling host will: the manifest digest from the registry, then the
 * signatures at the lookaside URL the trust file gives pulling hosts, each
 * checked as verify --native checks it (trusted key, digest, signed identity)
 * against the scope's keys and identity from the trust file. Signatures that
 * are staged but not served are named, with the fix.
 */
export interface SignedReport {
  image: string
  digest: string
  /** The trust file scope that decides for this image. */
  scope: string
  /** The URL pulling hosts read signatures from. */
  lookaside: string
  trustedKeys: string[]
  /** The trust file's signer, when it has one, and whether a valid signature is by its key. */
  signer?: {fingerprint: string; signed: boolean}
  signatures: NativeSignature[]
  /** Signature files for this digest in the staging directory (null: this scope stages nowhere). */
  staged: number | null
  accepted: boolean
  summary: string
  exitCode: number
}

async function countStaged(root: HostRoot, staging: string | undefined, repoPath: string, digest: string): Promise<number | null> {
  if (!staging) return null
  const dir = path.join(root.resolve(stagingHostPath(staging)), `${repoPath}@${digest.replace(':', '=')}`)
  let n = 0
  while (await stat(path.join(dir, `signature-${n + 1}`)).then(() => true, () => false)) n++
  return n
}

export async function verifySigned(root: HostRoot, trust: TrustFile, image: string, options: {tlsVerify: boolean; capabilities: Capabilities; timeoutSeconds?: number}): Promise<SignedReport> {
  const registry = {tlsVerify: options.tlsVerify, budget: deadline(options.timeoutSeconds)}
  const openpgp = await import('openpgp')
  const ref = pulledReference(image)
  if (typeof ref === 'string') throw new ImagetrustError(`invalid image reference "${image}": ${ref}`)
  // The most specific trust file scope, as containers/image picks among them.
  const chain = dockerScopeChain(ref)
  const spec = chain.map((s) => trust.scopes.find((t) => t.scope === s)).find((s) => s !== undefined)
  if (!spec || spec.policy !== 'signed') {
    throw new ImagetrustError(`${image}: ${spec ? `its trust file scope "${spec.scope}" is policy: ${spec.policy}, so pulling hosts do not check signatures` : 'no scope of the trust file covers it'}`, {
      location: spec ? {file: trust.file, line: spec.line} : {file: trust.file},
    })
  }

  const location = {file: trust.file, line: spec.line}
  if (!spec.lookaside) throw new ImagetrustError(`scope "${spec.scope}" has no lookaside: pulling hosts have no URL to read signatures from`, {location})
  const keys = await loadKeys({...trust, keys: trust.keys.filter((k) => spec.keys.includes(k.name))}, options.capabilities, {strict: false, keyDir: root.layout.keyDir})
  const trusted = (await Promise.all(keys.filter((k) => k.type === 'gpg').map((k) => openpgp.readKeys({armoredKeys: k.content})))).flat()
  const trustedKeys = trusted.map((k) => k.getFingerprint().toUpperCase())
  const base = {image, scope: spec.scope, lookaside: spec.lookaside, trustedKeys}
  let digest = ''
  const signatures: NativeSignature[] = []
  try {
    digest = await fetchManifestDigest(ref, registry)
    const dir = `${spec.lookaside}/${ref.path}@${digest.replace(':', '=')}`
    for (const [i, bytes] of (await lookasideSignatures(root, dir, registry.budget)).entries()) {
      signatures.push(await checkSignature(openpgp, {index: i + 1, url: `${dir}/signature-${i + 1}`, bytes, trusted, digest, ref, identity: spec.identity}))
    }
  } catch (error) {
    if (!(error instanceof Unreachable)) throw error
    return {...base, digest, signatures, staged: null, accepted: false, summary: `inconclusive: ${error.message}`, exitCode: VERIFY_EXIT.inconclusive}
  }

  const staged = await countStaged(root, spec.lookasideStaging, ref.path, digest)
  const valid = signatures.filter((s) => s.valid)
  const fpr = trust.signer?.fingerprint
  const signer = fpr ? {fingerprint: fpr, signed: valid.some((s) => s.signer === fpr || trusted.find((k) => k.getFingerprint().toUpperCase() === fpr)?.getKeys().some((sub) => sub.getFingerprint().toUpperCase() === s.signer))} : undefined
  const where = `${spec.lookaside}/${ref.path}@${digest.replace(':', '=')}/`
  let summary: string
  let exitCode: number = VERIFY_EXIT.failed
  if (valid.length > 0) {
    summary = `pulling hosts will accept ${image}: ${where}signature-${valid[0].index} is a valid signature by ${valid[0].signer} for ${digest}`
    exitCode = VERIFY_EXIT.confirmed
    if (signer && !signer.signed) summary += `; note: not by this signer's key ${signer.fingerprint}`
  } else if (signatures.some((s) => s.inconclusive)) {
    summary = `inconclusive: ${signatures.filter((s) => s.inconclusive).map((s) => `#${s.index} ${s.reasons.join('; ')}`).join(' | ')}`
    exitCode = VERIFY_EXIT.inconclusive
  } else if (signatures.length === 0) {
    summary = `no signature for ${digest} at ${where}${staged ? `: ${staged} signature file(s) are staged in ${spec.lookasideStaging} but not served; run imagetrust publish` : staged === 0 ? ': none is staged either; push with --sign-by' : ''}`
  } else {
    summary = `no valid signature by a trusted key at ${where}: ${signatures.map((s) => `#${s.index} ${s.reasons.join('; ')}`).join(' | ')}`
  }

  return {...base, digest, ...(signer ? {signer} : {}), signatures, staged, accepted: valid.length > 0, summary, exitCode}
}

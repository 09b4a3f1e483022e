import {effectiveRule} from '../policy/effective.js'
import {describeRequirements} from '../policy/overrides.js'
import {type DockerReference, referenceName} from '../policy/reference.js'
import type {Policy, PolicyRequirement} from '../policy/types.js'
import {manifestDigest, RegistryUnreachable, type RegistryOptions} from '../registry/client.js'
import {resolveLookaside} from '../registries-d/lookup.js'
import type {SigstoreAttachment} from '../sigstore/verify.js'
import type {HostRoot} from '../host/paths.js'
import {checkSignature, LookasideUnreachable, lookasideSignatures} from '../verify/native.js'
import {judgeSigstore, type SigstoreRequirement} from '../verify/native-sigstore.js'
import {plainRequirements} from '../explain/words.js'
import type {PolicyView} from './policy-view.js'

/**
 * Would a fresh pull of this image, by this name, be accepted by a policy?
 * Requirements are ANDed: one refusal refuses, then anything unknowable
 * makes the whole verdict unknown. Signatures are checked natively (GPG
 * lookaside with openpgp, sigstore attachments with node:crypto) for the
 * manifest digest the image has locally. Fetches are shared per digest.
 */
export type Outcome = 'accepted' | 'refused' | 'unknown'

export interface Verdict {
  outcome: Outcome
  reason: string
  /** The fingerprint of the key whose signature was accepted. */
  signer?: string
}

/** A verdict as audit reports it: which policy file, scope and requirement gave it. */
export interface PolicyVerdict extends Verdict {
  policyFile: string
  scope: string | null
  requirement: string
}

export interface JudgeContext {
  root: HostRoot
  view: PolicyView
  registry: RegistryOptions
  gpgSignatures: Map<string, Promise<Uint8Array[]>>
  sigstoreAttachments: Map<string, Promise<SigstoreAttachment[]>>
  gpgKeys: Map<string, Promise<unknown[]>>
  digests: Map<string, Promise<string>>
}

export function judgeContext(root: HostRoot, view: PolicyView, registry: RegistryOptions): JudgeContext {
  return {root, view, registry, gpgSignatures: new Map(), sigstoreAttachments: new Map(), gpgKeys: new Map(), digests: new Map()}
}

function once<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let pending = cache.get(key)
  if (!pending) {
    pending = make()
    cache.set(key, pending)
  }

  return pending
}

export interface ImageToJudge {
  ref: DockerReference
  /** The manifest digest from local storage, when it has one for this repository. */
  digest?: string
}

export interface Judgement extends Verdict {
  scope: string | null
  requirement: string
  requirements: PolicyRequirement[]
  digest?: string
}

export async function judgeImage(ctx: JudgeContext, policy: Policy, image: ImageToJudge): Promise<Judgement> {
  const rule = effectiveRule(policy, image.ref)
  const base = {scope: rule.scope, requirement: plainRequirements(rule.requirements), requirements: rule.requirements}
  const scopeName = rule.scope === null ? 'the default' : rule.scope === '' ? 'the docker transport default ""' : `scope "${rule.scope}"`
  const needsDigest = rule.requirements.some((r) => r.type !== 'insecureAcceptAnything' && r.type !== 'reject')
  let digest = image.digest
  // A reject refuses whatever the signatures say: no need to look for them.
  if (rule.requirements.some((r) => r.type === 'reject')) return {...base, outcome: 'refused', reason: `${scopeName} rejects every image`}
  if (needsDigest && !digest) {
    try {
      const {ref} = image
      digest = await once(ctx.digests, `${referenceName(ref)}:${ref.tag ?? ref.digest}`, () => manifestDigest(ref.domain, ref.path, ref.digest ?? ref.tag ?? 'latest', ctx.registry))
    } catch (error) {
      return {...base, outcome: 'unknown', reason: `cannot be known: no local digest for ${referenceName(image.ref)}, and ${(error as Error).message}`}
    }
  }

  const verdicts: Verdict[] = []
  for (const requirement of rule.requirements) {
    verdicts.push(await judgeRequirement(ctx, requirement, image.ref, digest!, scopeName))
    if (verdicts.at(-1)!.outcome === 'refused') break
  }

  const refused = verdicts.find((v) => v.outcome === 'refused')
  const unknown = verdicts.find((v) => v.outcome === 'unknown')
  const decided = refused ?? unknown ?? {outcome: 'accepted' as const, reason: verdicts.map((v) => v.reason).join('; '), signer: verdicts.find((v) => v.signer)?.signer}
  return {...base, ...decided, digest}
}

async function judgeRequirement(ctx: JudgeContext, requirement: PolicyRequirement, ref: DockerReference, digest: string, scopeName: string): Promise<Verdict> {
  switch (requirement.type) {
    case 'insecureAcceptAnything': {
      return {outcome: 'accepted', reason: `${scopeName} accepts any image, signed or not`}
    }

    case 'reject': {
      return {outcome: 'refused', reason: `${scopeName} rejects every image`}
    }

    case 'signedBy': {
      return judgeGpg(ctx, requirement, ref, digest)
    }

    case 'sigstoreSigned': {
      const attachments = resolveLookaside(ctx.view.registries, ref).sigstoreAttachments.value === true
      const verdict = await judgeSigstore({
        requirement: requirement as SigstoreRequirement,
        ref,
        digest,
        attachmentsEnabled: attachments,
        readKey: (p) => ctx.view.read(p),
        registry: ctx.registry,
        cache: ctx.sigstoreAttachments,
      })
      return {outcome: verdict.outcome, reason: verdict.summary, signer: verdict.outcome === 'accepted' ? verdict.signatures.find((s) => s.valid)?.signer : undefined}
    }

    default: {
      return {outcome: 'unknown', reason: `cannot be known: ${requirement.type} is not checked natively`}
    }
  }
}

type SignedBy = Extract<PolicyRequirement, {type: 'signedBy'}>

async function gpgKeysOf(ctx: JudgeContext, requirement: SignedBy): Promise<Awaited<ReturnType<typeof import('openpgp').readKeys>>> {
  const sources = [...(requirement.keyPath ? [requirement.keyPath] : []), ...(requirement.keyPaths ?? [])]
  const key = JSON.stringify([sources, requirement.keyData ?? null])
  return once(ctx.gpgKeys, key, async () => {
    const openpgp = await import('openpgp')
    const keys = []
    for (const p of sources) {
      const bytes = await ctx.view.read(p)
      if (!bytes) continue
      const text = Buffer.from(bytes).toString('utf8')
      const blocks = text.match(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g) ?? []
      if (blocks.length > 0) for (const block of blocks) keys.push(...(await openpgp.readKeys({armoredKeys: block}).catch(() => [])))
      else keys.push(...(await openpgp.readKeys({binaryKeys: bytes}).catch(() => [])))
    }

    if (requirement.keyData) {
      const bytes = Buffer.from(requirement.keyData, 'base64')
      const text = bytes.toString('utf8')
      keys.push(...(await (text.includes('-----BEGIN PGP') ? openpgp.readKeys({armoredKeys: text}) : openpgp.readKeys({binaryKeys: new Uint8Array(bytes)})).catch(() => [])))
    }

    return keys
  }) as never
}

async function judgeGpg(ctx: JudgeContext, requirement: SignedBy, ref: DockerReference, digest: string): Promise<Verdict> {
  const openpgp = await import('openpgp')
  const trusted = await gpgKeysOf(ctx, requirement)
  if (trusted.length === 0) return {outcome: 'refused', reason: `none of the policy's keys can be read (${describeRequirements([requirement])}): containers/image refuses every image`}
  const lookaside = String(resolveLookaside(ctx.view.registries, ref).lookaside.value)
  const dir = `${lookaside}/${ref.path}@${digest.replace(':', '=')}`
  let blobs: Uint8Array[]
  try {
    blobs = await once(ctx.gpgSignatures, dir, () => lookasideSignatures(ctx.root, dir, ctx.registry.budget))
  } catch (error) {
    if (error instanceof LookasideUnreachable || error instanceof RegistryUnreachable) return {outcome: 'unknown', reason: `cannot be known: ${error.message}`}
    throw error
  }

  if (blobs.length === 0) return {outcome: 'refused', reason: `no signature at ${dir}/`}
  const checks: Awaited<ReturnType<typeof checkSignature>>[] = []
  for (const [i, bytes] of blobs.entries()) {
    checks.push(await checkSignature(openpgp, {index: i + 1, url: `${dir}/signature-${i + 1}`, bytes, trusted, digest, ref, identity: requirement.signedIdentity}))
  }

  const valid = checks.find((c) => c.valid)
  if (valid) return {outcome: 'accepted', reason: `valid signature by ${valid.signer}`, signer: valid.signer}
  const undecided = checks.filter((c) => c.inconclusive)
  const detail = (list: typeof checks) => list.map((c) => `#${c.index} ${c.reasons.join('; ')}`).join(' | ')
  if (undecided.length > 0) return {outcome: 'unknown', reason: `cannot be known: ${detail(undecided)}`}
  return {outcome: 'refused', reason: `no valid signature by a trusted key: ${detail(checks)}`}
}

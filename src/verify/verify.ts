import {findOnPath} from '../host/detect.js'
import {HostRoot} from '../host/paths.js'
import {readHostFile, readRegistriesDir} from '../host/snapshot.js'
import {ImagetrustError} from '../lib/errors.js'
import {effectiveRule} from '../policy/effective.js'
import {dockerScopeChain} from '../policy/match.js'
import {parsePolicy} from '../policy/parse.js'
import {parseImageReference} from '../policy/reference.js'
import type {Policy} from '../policy/types.js'
import {resolveLookaside} from '../registries-d/lookup.js'
import type {TrustFile} from '../trustfile/types.js'
import {type Expectation, type Outcome, classify} from './classify.js'
import type {VerifyContext} from './context.js'
import {type PullEngine, testPull} from './pull.js'

export interface VerifyCase {
  image: string
  expect: Expectation
  scope?: string
  /** A CRI-O Kubernetes namespace: only crictl can pull in one (with a pod config). */
  namespace?: string
}

export interface VerifyResult extends VerifyCase {
  engine: PullEngine
  outcome: Outcome
  reason: string
}

export interface VerifyReport {
  results: VerifyResult[]
  summary: Record<'confirmed' | 'notEnforced' | 'broken' | 'inconclusive' | 'misconfigured', number>
  exitCode: number
}

/** 0 all confirmed; 3 anything not enforced or broken; 4 inconclusive and nothing worse. */
export const VERIFY_EXIT = {confirmed: 0, failed: 3, inconclusive: 4} as const

export function casesFromTrust(trust: TrustFile): VerifyCase[] {
  const cases: VerifyCase[] = []
  const namespaceOf = new Map<string, string[]>()
  for (const ns of trust.crioNamespaces) for (const scope of ns.scopes) namespaceOf.set(scope, [...(namespaceOf.get(scope) ?? []), ns.namespace])
  for (const scope of trust.scopes) {
    for (const namespace of namespaceOf.get(scope.scope) ?? [undefined]) {
      if (scope.test?.signed) cases.push({image: scope.test.signed, expect: 'accept', scope: scope.scope, namespace})
      if (scope.test?.unsigned) cases.push({image: scope.test.unsigned, expect: 'reject', scope: scope.scope, namespace})
    }
  }

  return cases
}

export async function chooseEngines(requested: string): Promise<PullEngine[]> {
  if (requested !== 'auto') {
    if (!(await findOnPath(requested))) throw new ImagetrustError(`${requested} is not installed (not found on PATH)`)
    return [requested as PullEngine]
  }

  const engines: PullEngine[] = []
  if (await findOnPath('podman')) engines.push('podman')
  if (await findOnPath('skopeo')) engines.push('skopeo')
  // crictl only talks to a running CRI-O; only use it when CRI-O is installed too.
  if ((await findOnPath('crictl')) && (await findOnPath('crio'))) engines.push('crictl')
  if (engines.length === 0) throw new ImagetrustError('no engine to pull with: install podman or skopeo, or name one with --engine')
  return engines
}

export function summarize(results: VerifyResult[]): VerifyReport {
  const summary = {confirmed: 0, notEnforced: 0, broken: 0, inconclusive: 0, misconfigured: 0}
  for (const r of results) {
    if (r.outcome === 'confirmed') summary.confirmed++
    else if (r.outcome === 'NOT ENFORCED') summary.notEnforced++
    else if (r.outcome === 'broken') summary.broken++
    else if (r.outcome === 'misconfigured') summary.misconfigured++
    else summary.inconclusive++
  }

  const undecided = summary.inconclusive + summary.misconfigured
  const exitCode = summary.notEnforced + summary.broken > 0 ? VERIFY_EXIT.failed : undecided > 0 ? VERIFY_EXIT.inconclusive : VERIFY_EXIT.confirmed
  return {results, summary, exitCode}
}

export async function runVerify(
  cases: VerifyCase[],
  engines: PullEngine[],
  context: VerifyContext,
  options: {tlsVerify: boolean; root: HostRoot},
): Promise<VerifyReport> {
  if (cases.length === 0) {
    throw new ImagetrustError('nothing to verify: add test: {signed: ..., unsigned: ...} images to the trust file scopes, or pass --image REF --expect accept|reject')
  }

  // The lookaside named in a 'no signature' reason comes from the registries.d the engines read.
  const registries = context.registriesDir
    ? await readRegistriesDir(new HostRoot('/'), context.registriesDir)
    : await readRegistriesDir(options.root, options.root.layout.registriesD)
  const results: VerifyResult[] = []
  for (const testCase of cases) {
    const ref = parseImageReference(testCase.image)
    if (typeof ref === 'string') throw new ImagetrustError(`invalid image reference "${testCase.image}": ${ref}`)
    if (testCase.scope !== undefined && !dockerScopeChain(ref).includes(testCase.scope)) {
      const judge = effectiveRule(await policyInForce(context, options.root), ref)
      const by = judge.scope === null ? 'the global default' : judge.scope === '' ? 'the docker transport default ""' : `scope "${judge.scope}"`
      const reason = `misconfigured test: ${testCase.image} is not under scope "${testCase.scope}"; containers/image judges it by ${by}, so its pull proves nothing about "${testCase.scope}"`
      results.push({...testCase, engine: engines[0], outcome: 'misconfigured', reason})
      continue
    }

    const lookaside = String(resolveLookaside(registries.files, ref).lookaside.value)
    if (testCase.namespace && !engines.includes('crictl')) {
      results.push({...testCase, engine: engines[0], outcome: 'inconclusive', reason: `a pull in Kubernetes namespace ${testCase.namespace} needs CRI-O: verify --engine crictl`})
      continue
    }

    for (const engine of engines.filter((e) => !testCase.namespace || e === 'crictl')) {
      const pulled = await testPull(engine, testCase.image, context, {tlsVerify: options.tlsVerify, namespace: testCase.namespace})
      results.push({...testCase, engine, ...classify(testCase.expect, pulled, {lookaside})})
    }
  }

  return summarize(results)
}

/** The policy the engines read in this context. */
async function policyInForce(context: VerifyContext, root: HostRoot): Promise<Policy> {
  const file = context.policyPath ? await readHostFile(new HostRoot('/'), context.policyPath) : await readHostFile(root, root.layout.policy)
  if (!file.content) return {default: [{type: 'reject'}]} // containers/image refuses every pull without a policy
  return parsePolicy(file.content, file.realPath).policy
}

export function renderReport(report: VerifyReport): string {
  const lines = report.results.map((r) => `${r.outcome.padEnd(13)} ${r.engine.padEnd(7)} ${r.expect === 'accept' ? 'signed  ' : 'unsigned'} ${r.image}: ${r.reason}`)
  const s = report.summary
  lines.push(`${s.confirmed} confirmed, ${s.notEnforced} not enforced, ${s.broken} broken, ${s.inconclusive} inconclusive${s.misconfigured ? `, ${s.misconfigured} misconfigured` : ''}`)
  return lines.join('\n')
}

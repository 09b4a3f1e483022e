import * as Flags from '@oclif/core/flags'

import {type HostRoot, hostRoot} from '../host/paths.js'
import {ImagetrustCommand} from '../lib/command.js'
import {trustFilePath} from '../plan/converge.js'
import {trustAsOf} from '../trustfile/expiry.js'
import {loadTrustFile} from '../trustfile/load.js'
import {installedContext} from '../verify/preflight.js'
import {casesFromTrust, chooseEngines, renderReport, runVerify, type VerifyCase, type VerifyReport} from '../verify/verify.js'
import {verifyFlags, casesFromFlags} from '../verify/flags.js'
import {nativeVerify, type NativeReport} from '../verify/native.js'
import type {SignedReport} from '../verify/signed.js'
import {capabilitiesOf, detectEngines} from '../host/detect.js'
import {withProgress} from '../lib/progress.js'
import {DEFAULT_TIMEOUT_SECONDS} from '../registry/limits.js'


export default class Verify extends ImagetrustCommand {
  static override summary = 'Confirm enforcement with real test pulls: signed images accepted, unsigned ones refused.'
  static override description = `Pulls each scope's test images (or --image/--expect pairs) with each detected engine, reading the config installed on the host (or under --root). Nothing in the host's image storage changes.
Outcomes: confirmed; NOT ENFORCED (an image that must be refused was accepted); broken (a signed image was refused, with the reason); inconclusive (registry or lookaside unreachable, or auth needed).
Exit codes: 0 all confirmed, 3 anything not enforced or broken, 4 inconclusive and nothing worse, 1 error.`

  static override examples = [
    '<%= config.bin %> verify',
    '<%= config.bin %> verify --engine skopeo --image registry.example.com/app:1 --expect accept --image docker.io/library/alpine:3 --expect reject',
    '<%= config.bin %> verify --json --no-tls-verify',
  ]

  static override flags = {
    ...verifyFlags,
    native: Flags.string({
      description: "Diagnose IMAGE without an engine: manifest digest from the registry, lookaside signatures verified with the policy's keys; names the key that made each signature.",
      helpValue: 'IMAGE',
    }),
    signed: Flags.string({
      description:
        "On the signing host, after a push: confirm that the lookaside URL pulling hosts use (the trust file's lookaside) serves a valid signature for IMAGE's digest, by the trusted key, with the right identity; names signatures staged but not published.",
      helpValue: 'IMAGE',
      exclusive: ['native'],
    }),
    timeout: Flags.integer({
      description: 'With --native or --signed: seconds for the whole check, every registry and lookaside fetch together; a server still sending then makes it inconclusive (exit 4).',
      helpValue: 'SECONDS',
      default: DEFAULT_TIMEOUT_SECONDS,
      min: 1,
      max: 3600,
    }),
  }

  async run(): Promise<VerifyReport | NativeReport | SignedReport> {
    const {flags} = await this.parse(Verify)
    const root = hostRoot(flags)
    if (flags.native) return this.runNative(root, flags.native, flags['tls-verify'], flags.timeout)
    if (flags.signed) return this.runSigned(root, flags.signed, {tlsVerify: flags['tls-verify'], timeoutSeconds: flags.timeout}, trustFilePath(flags))
    const given = casesFromFlags(flags.image, flags.expect)
    let cases: VerifyCase[] = given
    // The trust file as of now: an expired scope's test images no longer say anything.
    if (given.length === 0) cases = casesFromTrust(trustAsOf(await loadTrustFile(trustFilePath(flags)), new Date()).trust)
    const engines = await chooseEngines(flags.engine)
    const context = await installedContext(root)
    let report: VerifyReport
    try {
      report = await withProgress(`test pulls: ${cases.length} image(s) with ${engines.join(', ')}`, () => runVerify(cases, engines, context, {tlsVerify: flags['tls-verify'], root}), {
        quiet: this.jsonEnabled(),
        describe: (r) => `${r.summary.confirmed} confirmed`,
      })
    } finally {
      await context.cleanup()
    }

    this.log(renderReport(report))
    process.exitCode = report.exitCode
    return report
  }

  private async runSigned(root: HostRoot, image: string, options: {tlsVerify: boolean; timeoutSeconds: number}, trustFile: string): Promise<SignedReport> {
    const {verifySigned} = await import('../verify/signed.js')
    const report = await verifySigned(root, await loadTrustFile(trustFile), image, {...options, capabilities: capabilitiesOf(await detectEngines())})
    this.log(`${report.image}  ${report.digest}`)
    this.log(`  trust file scope: ${report.scope}; trusted keys: ${report.trustedKeys.join(', ') || 'none'}`)
    this.log(`  lookaside (what pulling hosts read): ${report.lookaside}${report.staged === null ? '' : `; staged here: ${report.staged}`}`)
    for (const s of report.signatures) this.log(`  signature-${s.index}: ${s.valid ? 'VALID' : s.inconclusive ? 'inconclusive' : 'invalid'} by ${s.signer}${s.trusted ? ' (trusted)' : ''}: ${s.reasons.join('; ')}`)
    this.log(`  ${report.summary}`)
    process.exitCode = report.exitCode
    return report
  }

  private async runNative(root: HostRoot, image: string, tlsVerify: boolean, timeoutSeconds: number): Promise<NativeReport> {
    const report = await withProgress(`probing the registry and lookaside for ${image}`, () => nativeVerify(root, image, {tlsVerify, timeoutSeconds}), {quiet: this.jsonEnabled()})
    this.log(`${report.image}  ${report.digest}`)
    this.log(`  policy scope: ${report.scope ?? '(default)'}; trusted keys: ${report.trustedKeys.join(', ') || 'none'}`)
    this.log(`  lookaside: ${report.lookaside}`)
    for (const s of report.signatures) this.log(`  signature-${s.index}: ${s.valid ? 'VALID' : s.inconclusive ? 'inconclusive' : 'invalid'} by ${s.signer}${s.trusted ? ' (trusted)' : ''}: ${s.reasons.join('; ')}`)
    this.log(`  ${report.summary}`)
    process.exitCode = report.exitCode
    return report
  }
}


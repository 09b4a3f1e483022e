import * as Flags from '@oclif/core/flags'

import {type ApplyOptions, type ApplyResult, applyTrust} from '../plan/converge.js'
import {renderDiff} from '../plan/render.js'
import {casesFromFlags, verifyFlags} from '../verify/flags.js'
import {applyVerified, type VerifiedApply} from '../verify/preflight.js'
import {chooseEngines, renderReport} from '../verify/verify.js'
import {ImagetrustCommand} from '../lib/command.js'
import {takeOverFlag} from '../lib/flags.js'
import {colorDiff, colorEnabled} from '../lib/color.js'
import {unusedKeyWarnings} from '../trustfile/hints.js'
import {stamp} from '../status/stamp.js'
import {detectEngines, type EngineInfo} from '../host/detect.js'
import {hostRoot, trustFilePath} from '../host/paths.js'
import type {TrustFile} from '../trustfile/types.js'

/** apply --json; with --diff every file also carries its content before and after. */
export type ApplyJson = Omit<ApplyResult, 'warnings' | 'files'> & {
  warnings: string[]
  files: Array<ApplyResult['files'][number] & {before?: string | null; after?: string | null}>
}

/**
 * The trust file, read once for the whole run (apply reads it again only if
 * it changed meanwhile), and the sigstoreSigned scopes this host's engines
 * cannot verify. Errors in the trust file are apply's to report: here it is
 * just not loaded.
 */
async function loadTrustEarly(flags: {root: string; user: boolean; config?: string}, engines: Promise<EngineInfo[]>): Promise<{trust?: TrustFile; warnings: string[]}> {
  const {loadTrustFile} = await import('../trustfile/load.js')
  const trust = await loadTrustFile(trustFilePath(flags)).catch(() => undefined)
  if (!trust) return {warnings: []}
  const {sigstoreScopes, unverifiableSigstoreWarnings} = await import('../sigstore/probe.js')
  return {trust, warnings: sigstoreScopes(trust).length > 0 ? await unverifiableSigstoreWarnings(hostRoot(flags), trust, engines) : []}
}

export default class Apply extends ImagetrustCommand {
  static override summary = 'Converge policy.json, registries.d and key files to the trust file.'
  static override description =
    'Writes only what differs: a lock against concurrent runs, a backup of every changed file, and an atomic rename for each write. A second run with the same input changes nothing.'

  static override examples = [
    '<%= config.bin %> apply',
    '<%= config.bin %> apply --dry-run --config ./trust.yaml',
    '<%= config.bin %> apply --root /srv/image-root --json',
    '<%= config.bin %> apply --take-over registry.example.com:5000/app',
  ]

  static override flags = {
    'dry-run': Flags.boolean({description: 'Show what would change and write nothing.'}),
    'replace-invalid': Flags.boolean({description: 'Back up and replace a policy.json that does not parse.'}),
    'lock-timeout': Flags.integer({description: 'Seconds to wait for another run to finish.', default: 60, min: 0}),
    'take-over': takeOverFlag,
    diff: Flags.boolean({description: 'With --json: each file\'s content before and after (files[].before, files[].after; null when absent), for Ansible\'s --diff.'}),
    verify: Flags.boolean({
      description: 'Test-pull against the candidate config first and install only if enforcement is confirmed (exit 3 or 4 otherwise, nothing written); verify again after installing and roll back if that fails.',
    }),
    ...verifyFlags,
  }

  async run(): Promise<ApplyJson | (VerifiedApply & {changed: boolean})> {
    const {flags} = await this.parse(Apply)
    // Finding the engines waits on their --version runs: it goes on while the trust file is parsed.
    const detecting = detectEngines()
    // Before anything is written: sigstoreSigned scopes this host's engines cannot verify.
    const {trust: loadedTrust, warnings: early} = await loadTrustEarly(flags, detecting)
    this.warnAll(early)
    const foundEngines = await detecting
    if (flags.verify && !flags['dry-run']) return this.runVerified(flags, {loadedTrust, foundEngines})
    const result = await applyTrust({
      loadedTrust,
      foundEngines,
      root: flags.root,
      user: flags.user,
      config: flags.config,
      dryRun: flags['dry-run'],
      replaceInvalid: flags['replace-invalid'],
      lockTimeoutMs: flags['lock-timeout'] * 1000,
      takeOver: flags['take-over'],
    })
    result.warnings.push(...unusedKeyWarnings(result.prepared.trust))
    // Only an apply that changed files is recorded: a second, empty apply must leave the host byte-identical.
    if (!flags['dry-run'] && result.changed) await stamp(result.prepared.root, 'apply')
    this.warnAll(result.warnings)
    if (flags['dry-run'] && result.changed && !this.jsonEnabled()) {
      this.log(colorDiff(await renderDiff(result.prepared.plan.changes, (p) => result.prepared.root.resolve(p)), colorEnabled({noColor: flags['no-color']})))
    }

    for (const note of result.prepared.plan.notes) if (result.changed) this.log(note)
    if (!result.changed) this.log('No changes: the host already matches the trust file.')
    else {
      this.log(`${flags['dry-run'] ? 'Would change' : 'Changed'} ${result.files.length} file(s)${result.backup ? ` (backup ${result.backup})` : ''}:`)
      for (const file of result.files) this.log(`  ${file.action.padEnd(6)} ${file.path}`)
    }

    if (result.signer) {
      this.log(`Signing host: key ${result.signer.fingerprint} in ${result.signer.gnupgHome} ${result.signer.testSigned ? 'signs' : 'is present (passphrase-protected, not test-signed)'}, and is the key pulling hosts trust.`)
      for (const d of result.signer.staging) this.log(`  staging ${d.path} (${d.scope})${d.created ? (flags['dry-run'] ? ': would create' : ': created') : ''}`)
    }

    const {prepared, ...json} = result
    if (!flags.diff) return {...json, warnings: [...early, ...json.warnings]}
    const byPath = new Map(prepared.plan.changes.map((c) => [prepared.root.resolve(c.hostPath), c]))
    return {...json, warnings: [...early, ...json.warnings], files: json.files.map((f) => ({...f, before: byPath.get(f.path)?.before ?? null, after: byPath.get(f.path)?.after ?? null}))}
  }

  private async runVerified(flags: Awaited<ReturnType<Apply['parse']>>['flags'], found: Pick<ApplyOptions, 'loadedTrust' | 'foundEngines'>): Promise<VerifiedApply & {changed: boolean}> {
    const result = await applyVerified({
      ...found,
      root: flags.root,
      user: flags.user,
      config: flags.config,
      replaceInvalid: flags['replace-invalid'],
      lockTimeoutMs: flags['lock-timeout'] * 1000,
      takeOver: flags['take-over'],
      engines: await chooseEngines(flags.engine),
      tlsVerify: flags['tls-verify'],
      extraCases: casesFromFlags(flags.image, flags.expect),
    })
    if (result.installed) await stamp(hostRoot({root: flags.root as string, user: flags.user as boolean}), 'apply')
    this.warnAll(result.warnings)
    this.log(`Preflight against the candidate config:\n${renderReport(result.preflight)}`)
    if (result.postflight) this.log(`After installing:\n${renderReport(result.postflight)}`)
    if (result.rolledBack) this.log(`Verification of the installed config failed: rolled back apply ${result.rolledBack.backup}.`)
    else if (result.installed) this.log(`Installed ${result.apply.files.length} file(s) (backup ${result.apply.backup}); enforcement confirmed.`)
    else if (result.preflight.exitCode !== 0) this.log('Not installed: enforcement was not confirmed. Nothing was written.')
    else this.log('No changes: the host already matches the trust file, and enforcement is confirmed.')
    process.exitCode = result.exitCode
    // changed at the top, as plain apply reports it: what this run wrote and kept.
    return {changed: result.installed && !result.rolledBack && result.apply.changed, ...result}
  }
}

import {capabilitiesOf} from '../host/detect.js'
import {hostRoot, trustFilePath} from '../host/paths.js'
import {colorDiff, paint} from '../lib/color.js'
import {ImagetrustError} from '../lib/errors.js'
import {withProgress} from '../lib/progress.js'
import type {ApplyResult} from '../plan/converge.js'
import {renderDiff} from '../plan/render.js'
import type {FileAction} from '../plan/types.js'
import {installedContext} from '../verify/preflight.js'
import {casesFromTrust, chooseEngines, renderReport, runVerify, type VerifyReport} from '../verify/verify.js'
import {answersFromFlags, commit, type InitFlags, missingFlags, planStaged, readExisting, stage} from './core.js'
import {probeLookaside, rejectImpact, renderImpact, renderSurvey, surveyHost} from './host.js'
import {formatKey} from './keys.js'
import type {DefaultChoice} from './types.js'
import {askCommit, InitCancelled, runWizard, wizardStep} from './wizard.js'

export interface InitOptions extends InitFlags {
  root: string
  user?: boolean
  config?: string
  engine: string
  'tls-verify': boolean
  'no-apply'?: boolean
  'no-verify'?: boolean
}

export interface InitUi {
  log: (line: string) => void
  warn: (line: string) => void
  color: boolean
  /** A terminal on stdin and stdout: prompts are possible. */
  interactive: boolean
  quiet: boolean
}

export interface InitResult {
  trustFile: string
  created: boolean
  written: boolean
  default?: DefaultChoice
  keys: Array<{name: string; type: string; fingerprints: string[]}>
  scopes: string[]
  notes: string[]
  plan: Array<{path: string; action: FileAction}>
  apply: (Omit<ApplyResult, 'warnings'> & {warnings: string[]}) | null
  verify: VerifyReport | null
  nextSteps: string[]
}

export const NEXT_STEPS = [
  'Run `imagetrust check` from a timer (a systemd timer or cron; exit 2 means drift) to catch hand edits.',
  'Many hosts: the Ansible role ansible/roles/imagetrust installs this trust file and its keys and runs apply.',
  'Rotate a key: `imagetrust key add NEW FILE --scope SCOPE --apply`, later `imagetrust key remove OLD --force --apply` (docs/key-rotation.md).',
  'Prove enforcement any time: `imagetrust verify`.',
]

/** `imagetrust init`: prompts (or flags) → a staged trust file → plan → write and apply on confirmation → verify. */
export async function runInit(options: InitOptions, ui: InitUi): Promise<InitResult> {
  const trustFile = trustFilePath(options)
  const root = hostRoot(options)
  const existing = await readExisting(trustFile)
  const useFlags = Boolean(options.yes)
  if (!useFlags && !ui.interactive) {
    throw new ImagetrustError(`no terminal to ask on, so every answer must come from flags: missing ${missingFlags(options, {existing: Boolean(existing)}).join(', ')}`, {
      hint: 'imagetrust init --yes --scope REGISTRY[/NAMESPACE] --key FILE|https://URL|gpg:FINGERPRINT --lookaside URL --default reject',
    })
  }

  if (useFlags) {
    const missing = missingFlags(options, {existing: Boolean(existing)}).filter((f) => f !== '--yes')
    if (missing.length > 0) throw new ImagetrustError(`init --yes needs every answer as a flag: missing ${missing.join(', ')}`)
  }

  const survey = await withProgress('looking for engines and local images', () => surveyHost(root), {quiet: ui.quiet})
  const capabilities = capabilitiesOf(survey.engines)
  let answers
  try {
    if (useFlags) {
      ui.log(renderSurvey(survey))
      answers = await answersFromFlags(options, {capabilities, existing, quiet: ui.quiet, log: ui.log})
      for (const key of answers.keys) {
        ui.log(`Key "${key.name}" (pinned; --yes stands for the confirmation):\n${formatKey(key)}`)
        for (const w of key.warnings) ui.warn(w)
      }

      for (const scope of answers.scopes) {
        if (!scope.lookaside) continue
        const probe = await withProgress(`checking ${scope.lookaside}`, () => probeLookaside(scope.lookaside!), {quiet: ui.quiet, describe: (r) => r.detail})
        if (!probe.ok) ui.warn(`lookaside ${scope.lookaside} for ${scope.scope} does not answer (${probe.detail}): signed images will be refused until it does`)
      }

      if (answers.default === 'reject') ui.log(renderImpact(rejectImpact(survey, [...(existing?.scopes ?? []), ...answers.scopes.map((s) => s.scope)])))
    } else {
      answers = await runWizard({
        survey,
        capabilities,
        existing,
        color: ui.color,
        log: ui.log,
        preset: {scopes: options.scope, default: options.default as DefaultChoice | undefined, lookaside: options.lookaside, accept: options.accept, until: options.until, reason: options.reason},
      })
    }

    const staged = await stage(answers, trustFile, existing)
    ui.log('')
    ui.log(paint(`7. Trust file (${staged.created ? 'new' : 'edited'}): ${staged.trustFile}`, 'bold', ui.color))
    ui.log(staged.text.trimEnd())
    for (const note of staged.notes) ui.log(`note: ${note}`)
    if (answers.default === 'unset' || (!answers.default && existing?.default === undefined)) {
      ui.warn('default is unset: registries that no scope lists stay accepted unsigned. Set `default: reject` in the trust file (or rerun init with --default reject) to refuse them.')
    }

    ui.log('')
    ui.log(paint('8. Plan', 'bold', ui.color))
    const prepared = await planStaged(staged, {root: options.root, user: options.user, capabilities})
    for (const w of prepared.plan.warnings) ui.warn(w)
    const diff = await renderDiff(prepared.plan.changes, (p) => prepared.root.resolve(p))
    ui.log(prepared.plan.changes.length === 0 ? 'No host file changes: the host already matches.' : colorDiff(diff.trimEnd(), ui.color))
    const planFiles = prepared.plan.changes.map((c) => ({path: prepared.root.resolve(c.hostPath), action: c.action}))
    const choice = useFlags ? (options['no-apply'] ? 'write' : 'apply') : await askCommit()
    if (choice === 'cancel') throw new InitCancelled('cancelled at the plan')
    const result: InitResult = {
      trustFile: staged.trustFile,
      created: staged.created,
      written: true,
      default: answers.default,
      keys: answers.keys.map((k) => ({name: k.name, type: k.type, fingerprints: k.fingerprints})),
      scopes: [...answers.scopes.map((s) => s.scope), ...(answers.exceptions ?? []).map((e) => e.scope)],
      notes: staged.notes,
      plan: planFiles,
      apply: null,
      verify: null,
      nextSteps: NEXT_STEPS,
    }
    result.apply = await commit(staged, {root: options.root, user: options.user, capabilities, apply: choice === 'apply'})
    ui.log(`Wrote ${staged.trustFile}${staged.keyFiles.size > 0 ? ` and ${[...staged.keyFiles.keys()].join(', ')}` : ''}.`)
    if (result.apply) {
      for (const w of result.apply.warnings) ui.warn(w)
      ui.log(result.apply.changed ? `Applied: ${result.apply.files.length} file(s) changed (backup ${result.apply.backup}).` : 'Applied: no changes.')
    } else {
      ui.log('Not applied: run `imagetrust apply` when ready.')
    }

    ui.log('')
    ui.log(paint('9. Verify', 'bold', ui.color))
    const [{loadTrustFile}, {trustAsOf}] = await Promise.all([import('../trustfile/load.js'), import('../trustfile/expiry.js')])
    const cases = casesFromTrust(trustAsOf(await loadTrustFile(staged.trustFile), new Date()).trust)
    if (!result.apply || options['no-verify']) ui.log('Skipped: run `imagetrust verify` after apply.')
    else if (cases.length === 0) ui.log('No test images: add test: {signed, unsigned} to a scope, or run `imagetrust verify --image REF --expect accept|reject`.')
    else {
      const engines = await chooseEngines(options.engine)
      const context = await installedContext(root)
      try {
        result.verify = await withProgress(`test pulls (${cases.length} image(s), ${engines.join(', ')})`, () => runVerify(cases, engines, context, {tlsVerify: options['tls-verify'], root}), {
          quiet: ui.quiet,
          describe: (r) => `${r.summary.confirmed} confirmed`,
        })
      } finally {
        await context.cleanup()
      }

      ui.log(renderReport(result.verify))
      process.exitCode = result.verify.exitCode
    }

    ui.log('')
    ui.log('Next:')
    for (const step of NEXT_STEPS) ui.log(`  - ${step}`)
    return result
  } catch (error) {
    if ((error as Error)?.name === 'ExitPromptError' || (error as Error)?.name === 'AbortPromptError') {
      throw new InitCancelled(`cancelled at ${wizardStep.current}`)
    }

    throw error
  }
}

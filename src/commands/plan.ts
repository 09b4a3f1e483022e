import * as Flags from '@oclif/core/flags'

import {type DriftChange, describeChanges} from '../plan/changes.js'
import {preparePlan} from '../plan/converge.js'
import {renderDiff} from '../plan/render.js'
import type {DriftReason, FileAction} from '../plan/types.js'
import {ImagetrustCommand} from '../lib/command.js'
import {EXIT} from '../lib/errors.js'
import {takeOverFlag} from '../lib/flags.js'
import {colorDiff, colorEnabled} from '../lib/color.js'

export interface PlanResult {
  changed: boolean
  files: Array<{path: string; action: FileAction; reasons: DriftReason[]; changes: DriftChange[]}>
  diff: string
  warnings: string[]
}

export default class Plan extends ImagetrustCommand {
  static override summary = 'Print, as a unified diff, what apply would change.'
  static override examples = ['<%= config.bin %> plan', '<%= config.bin %> plan --config ./trust.yaml --root /srv/image-root', '<%= config.bin %> plan --take-over registry.example.com:5000/app']
  static override flags = {
    'take-over': takeOverFlag,
    'detailed-exitcode': Flags.boolean({description: 'Exit 2 when there are changes (0: none, 1: error), as terraform plan does.'}),
  }

  async run(): Promise<PlanResult> {
    const {flags} = await this.parse(Plan)
    const {plan, root} = await preparePlan({root: flags.root, user: flags.user, config: flags.config, takeOver: flags['take-over']})
    this.warnAll(plan.warnings)
    const diff = await renderDiff(plan.changes, (p) => root.resolve(p))
    this.log(plan.changes.length === 0 ? 'No changes: the host already matches the trust file.' : colorDiff(diff, colorEnabled({noColor: flags['no-color']})))
    if (flags['detailed-exitcode'] && plan.changes.length > 0) process.exitCode = EXIT.drift
    const changes = await describeChanges(plan.changes)
    return {
      changed: plan.changes.length > 0,
      files: plan.changes.map((c) => ({path: root.resolve(c.hostPath), action: c.action, reasons: c.reasons, changes: changes.get(c.hostPath) ?? []})),
      diff,
      warnings: plan.warnings,
    }
  }
}

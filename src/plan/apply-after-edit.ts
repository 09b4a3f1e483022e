import type {Capabilities} from '../host/capabilities.js'
import {type ApplyResult, applyTrust} from './converge.js'

/** The `--apply` step after a trust file edit: converge, report, and return the apply result for --json. */
export async function applyAfterEdit(
  log: (line: string) => void,
  warn: (warnings: string[]) => void,
  options: {root: string; user?: boolean; config: string; capabilities?: Capabilities},
): Promise<Omit<ApplyResult, 'warnings'>> {
  const applied = await applyTrust(options)
  warn(applied.warnings)
  log(applied.changed ? `Applied: ${applied.files.length} file(s) changed (backup ${applied.backup}).` : 'Applied: no changes.')
  const {prepared: _prepared, warnings: _warnings, ...result} = applied
  return result
}

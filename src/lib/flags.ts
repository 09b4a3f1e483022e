import * as Flags from '@oclif/core/flags'


/** Flags shared by the commands that can converge the host right after editing the trust file. */
export const applyFlag = Flags.boolean({description: 'Also run apply after editing the trust file.'})
export const expiryWarnFlag = Flags.integer({description: 'Warn about keys, and trust file scopes and keys (until:), that expire within this many days.', default: 30, min: 0})


/** Taking over a foreign rule that overrides the trust file's, as apply and plan offer it. */
export const takeOverFlag = Flags.string({
  description:
    'Take over a foreign policy.json scope that overrides a rule of the trust file ("" for the docker transport default): it gets the rule it hid, and its own requirements back when that rule leaves the trust file. Repeatable.',
  multiple: true,
  helpValue: 'SCOPE',
  // A shell passes "" as an empty argument, '""' as two quote characters: both mean the transport default.
  parse: async (value) => (value === '""' ? '' : value),
})

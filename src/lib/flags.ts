import * as Flags from '@oclif/core/flags'


/** Flags shared by the commands that can converge the host right after editing the trust file. */
export const applyFlag = Flags.boolean({description: 'Also run apply after editing the trust file.'})
export const expiryWarnFlag = Flags.integer({description: 'Warn about keys that expire within this many days.', default: 30, min: 0})


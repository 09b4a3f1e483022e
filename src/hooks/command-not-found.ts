import type {Hook} from '@oclif/core/hooks'

import {EXIT, ImagetrustError, reportError, wantsJson} from '../lib/errors.js'
import {suggest} from '../lib/suggest.js'

/** A mistyped command is a usage error (exit 64), reported the one documented way, with the closest commands suggested. */
const hook: Hook.CommandNotFound = async function (options) {
  const typed = options.id.replaceAll(':', ' ')
  const ids = options.config.commandIDs.map((id) => id.replaceAll(':', ' '))
  const topics = [...new Set(ids.filter((id) => id.includes(' ')).map((id) => id.split(' ')[0]))]
  const matches = suggest(typed, [...ids, ...topics])
  const hint =
    matches.length > 0
      ? `did you mean ${matches.map((m) => `'${options.config.bin} ${m}'`).join(' or ')}? See '${options.config.bin} --help' for the commands`
      : `see '${options.config.bin} --help' for the commands`
  reportError(new ImagetrustError(`command ${typed} not found`, {exitCode: EXIT.usage, hint}), {json: wantsJson(options.argv ?? [])})
  return undefined
}

export default hook

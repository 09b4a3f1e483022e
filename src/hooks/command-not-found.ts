import type {Hook} from '@oclif/core/hooks'

import {suggest} from '../lib/suggest.js'

/** A mistyped command: say so, suggest the closest commands, exit 1. */
const hook: Hook.CommandNotFound = async function (options) {
  const typed = options.id.replaceAll(':', ' ')
  const ids = options.config.commandIDs.map((id) => id.replaceAll(':', ' '))
  const topics = [...new Set(ids.filter((id) => id.includes(' ')).map((id) => id.split(' ')[0]))]
  const matches = suggest(typed, [...ids, ...topics])
  const hint = matches.length > 0 ? `Did you mean ${matches.map((m) => `"${options.config.bin} ${m}"`).join(' or ')}?` : `Run "${options.config.bin} help" for the list of commands.`
  if (options.argv?.includes('--json')) {
    process.stdout.write(`${JSON.stringify({error: {message: `unknown command "${typed}"`, hint, exitCode: 1}}, null, 2)}\n`)
  } else {
    process.stderr.write(`${options.config.bin}: error: unknown command "${typed}"\nhint: ${hint}\n`)
  }

  process.exitCode = 1
  return undefined
}

export default hook

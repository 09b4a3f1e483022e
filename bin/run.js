#!/usr/bin/env node
// Like @oclif/core's execute(), but an error that escapes a command (an unknown
// command, a command that fails to load) is reported the documented way
// (docs/json-output.md): exit 64 for usage errors, the small JSON object with --json.
import {readFile} from 'node:fs/promises'

import {flush} from '@oclif/core/flush'
import {run} from '@oclif/core/run'

// A reader that goes away early (`imagetrust plan --json | head -c1`) makes
// stdout (or stderr) fail with EPIPE. The rest of the output has nowhere to go: drop it
// quietly and let the command end with its own exit code. Without this,
// flush() below waits for a 'drain' that never comes and Node exits with 13.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error?.code !== 'EPIPE') throw error
    stream.write = (_chunk, encoding, callback) => {
      const done = typeof encoding === 'function' ? encoding : callback
      if (typeof done === 'function') process.nextTick(done)
      return true
    }
    stream.emit('drain')
  })
}

const argv = process.argv.slice(2)
try {
  await run(argv, import.meta.url)
  await flush()
} catch (error) {
  if (error?.code === 'EEXIT' && typeof error.oclif?.exit === 'number') {
    process.exitCode = error.oclif.exit
  } else {
    const errors = await import('../dist/lib/errors.js').catch(() => undefined)
    // The command IDs, for a "did you mean" when one is mistyped.
    const commands = await readFile(new URL('../oclif.manifest.json', import.meta.url), 'utf8')
      .then((text) => Object.keys(JSON.parse(text).commands ?? {}))
      .catch(() => [])
    if (errors) errors.reportError(error, {json: errors.wantsJson(argv), commands})
    else {
      process.stderr.write(`imagetrust: error: ${error?.message ?? error}\n`)
      process.exitCode = 1
    }
  }
}

// The entry point of both bundles (scripts/bundle.ts): the npm form's dist/bundle/imagetrust.cjs,
// which bin/run.js runs, and the single executable's main script (scripts/dist.ts). What oclif
// would find on disk (package.json, oclif.manifest.json, the command and hook modules) is built
// in: `imagetrust:sea-build` is generated at build time.
import {Plugin} from '@oclif/core/config'
import {flush} from '@oclif/core/flush'
import {run} from '@oclif/core/run'
import {manifest, pjson, root} from 'imagetrust:sea-build'

// The manifest is built in: no oclif.manifest.json to read, no command module to import to list them.
const readManifest = Plugin.prototype._manifest
Plugin.prototype._manifest = async function () {
  if (!this.isRoot) return readManifest.call(this)
  this.commandIDs = Object.keys(manifest.commands)
  this.hasManifest = true
  return manifest
}

// A reader that goes away early (`imagetrust plan --json | head -c1`) makes stdout (or
// stderr) fail with EPIPE. The rest of the output has nowhere to go: drop it quietly and let
// the command end with its own exit code. Without this, flush() below waits for a 'drain'
// that never comes and Node exits with 13.
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

async function main(argv) {
  try {
    // root: the npm form's package directory; in the single executable nothing is read from it.
    await run(argv, {root, pjson})
    await flush()
  } catch (error) {
    if (error?.code === 'EEXIT' && typeof error.oclif?.exit === 'number') {
      process.exitCode = error.oclif.exit
    } else {
      const errors = await import('../dist/lib/errors.js')
      errors.reportError(error, {json: errors.wantsJson(argv), commands: Object.keys(manifest.commands)})
    }
  }
}

main(process.argv.slice(2))

// The single executable's entry point: `npm run dist` (scripts/dist.ts) bundles it with
// esbuild into one CommonJS file, which Node's SEA support runs from inside a copy of the
// node binary. It does what bin/run.js does for the npm form, with what that form finds on
// disk (package.json, oclif.manifest.json, the command and hook modules) built in:
// `imagetrust:sea-build` is generated at build time.
import {Plugin} from '@oclif/core/config'
import {flush} from '@oclif/core/flush'
import {run} from '@oclif/core/run'
import {manifest, pjson} from 'imagetrust:sea-build'

// The manifest is built in: no oclif.manifest.json to read, no command module to import to list them.
const readManifest = Plugin.prototype._manifest
Plugin.prototype._manifest = async function () {
  if (!this.isRoot) return readManifest.call(this)
  this.commandIDs = Object.keys(manifest.commands)
  this.hasManifest = true
  return manifest
}

// As bin/run.js: a reader that goes away early (`imagetrust plan --json | head -c1`) is no error.
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
    // root: where the npm form's package would be; nothing is read from it.
    await run(argv, {root: '/usr/lib/imagetrust', pjson})
    await flush()
  } catch (error) {
    if (error?.code === 'EEXIT' && typeof error.oclif?.exit === 'number') {
      process.exitCode = error.oclif.exit
    } else {
      const errors = await import('../../dist/lib/errors.js')
      errors.reportError(error, {json: errors.wantsJson(argv), commands: Object.keys(manifest.commands)})
    }
  }
}

main(process.argv.slice(2))

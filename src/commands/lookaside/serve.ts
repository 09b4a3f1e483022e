import * as Flags from '@oclif/core/flags'

import {ImagetrustCommand} from '../../lib/command.js'

export interface ServeResult {
  url: string
  dir: string
  requests: number
}

/** A request path inside the quoted field of a text log line: a '"', a '\\' or a non-ASCII byte written \\xNN, as nginx does. */
export function logText(text: string): string {
  return text.replaceAll(/["\\]|[^\x20-\x7e]/g, (c) => [...Buffer.from(c)].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join(''))
}

export default class LookasideServe extends ImagetrustCommand {
  static override summary = 'Serve a directory of signature files over HTTP (the lookaside), read-only.'
  static override description = `A small, safe stand-in for python3 -m http.server, for small setups and tests: GET and HEAD only; files under DIR only (no .., encoded or not, and no symlink out of DIR: 403); 404 for anything missing and for directories (no listings); one access log line per request on standard output (JSON lines with --json); SIGTERM or SIGINT stops it gracefully.
For production, see templates/lookaside-nginx.conf and templates/imagetrust-lookaside.service.`

  static override examples = ['<%= config.bin %> lookaside serve --dir /srv/sigstore', '<%= config.bin %> lookaside serve --dir /srv/sigstore --listen 127.0.0.1:0 --json']
  static override flags = {
    dir: Flags.string({description: 'The web root: the directory that publish copies signatures to.', required: true, helpValue: 'DIR'}),
    listen: Flags.string({description: 'Address and port (port 0: any free port).', default: '127.0.0.1:8000', helpValue: 'HOST:PORT'}),
    'send-timeout': Flags.integer({description: 'Drop a client whose connection makes no progress for this many seconds (one that stops reading).', default: 10, min: 1, max: 3600, helpValue: 'SECONDS'}),
  }

  async run(): Promise<ServeResult> {
    const {flags} = await this.parse(LookasideServe)
    const {parseListen, serveLookaside} = await import('../../lookaside/server.js')
    const json = this.jsonEnabled()
    const listen = parseListen(flags.listen)
    if (!/^(?:127\.|::1$|localhost$)/.test(listen.host)) this.warnAll([`listening on ${listen.host}, not a loopback address: lookaside serve is meant for small setups; in production put nginx in front (templates/lookaside-nginx.conf)`])
    const server = await serveLookaside({
      dir: flags.dir,
      ...listen,
      sendTimeoutMs: flags['send-timeout'] * 1000,
      log: (e) => process.stdout.write(json ? `${JSON.stringify({event: 'request', ...e})}\n` : `${e.remote} - - [${e.time}] "${e.method} ${logText(e.path)}" ${e.status} ${e.bytes}${e.aborted ? ' aborted' : ''}\n`),
    })
    process.stdout.write(json ? `${JSON.stringify({event: 'listening', url: server.url, dir: server.dir})}\n` : `listening on ${server.url}, serving ${server.dir}\n`)
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve())
      process.once('SIGINT', () => resolve())
    })
    await server.close()
    if (!json) this.log(`stopped after ${server.requests} request(s)`)
    return {url: server.url, dir: server.dir, requests: server.requests}
  }
}

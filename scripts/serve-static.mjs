#!/usr/bin/env node
// Serves a directory read-only over HTTP on 127.0.0.1 (the lookaside web server
// of the demo and the e2e tests). Usage: serve-static.mjs DIR [PORT]; prints
// "listening PORT" once ready. Stops on SIGTERM.
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {createServer} from 'node:http'
import path from 'node:path'

const root = path.resolve(process.argv[2] ?? '.')
const port = Number(process.argv[3] ?? 0)

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1')
  const file = path.join(root, decodeURIComponent(url.pathname))
  if (!file.startsWith(root + path.sep) || req.method !== 'GET') {
    res.writeHead(404).end()
    return
  }

  const info = await stat(file).catch(() => null)
  if (!info?.isFile()) {
    res.writeHead(404).end()
    return
  }

  res.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': info.size})
  createReadStream(file).pipe(res)
})

server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))

import {constants} from 'node:fs'
import {open, readlink, realpath, stat} from 'node:fs/promises'
import type {IncomingMessage, Server, ServerResponse} from 'node:http'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'

import {ImagetrustError} from '../lib/errors.js'

/**
 * `lookaside serve`: a small static server for signature files, in place of
 * `python3 -m http.server`. GET and HEAD only; only files under DIR: a path
 * with a `..` or `.` segment, an encoded slash, a NUL or a malformed escape
 * is refused before the file system is asked, and a file is served only when
 * the opened descriptor really lies inside DIR (/proc/self/fd), so no symlink
 * leads out of it. One access log line per request; SIGTERM stops it after
 * the requests in flight.
 */
export interface AccessLogEntry {
  time: string
  remote: string
  method: string
  path: string
  status: number
  bytes: number
  /** The response did not reach its end: the client closed or reset, or it timed out. */
  aborted?: true
}

export interface LookasideServer {
  url: string
  dir: string
  requests: number
  close(): Promise<void>
}

const TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.pub': 'text/plain; charset=utf-8',
  '.asc': 'application/pgp-keys',
  '.gpg': 'application/pgp-keys',
}

/** Signature files (signature-1, ...) are binary OpenPGP messages. */
export function contentType(file: string): string {
  return TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream'
}

/** The path segments of a request target, or the status that refuses it. */
export function requestSegments(target: string): string[] | 400 | 403 {
  const rawPath = target.split(/[?#]/)[0]
  if (!rawPath.startsWith('/')) return 400
  const segments: string[] = []
  for (const raw of rawPath.split('/').slice(1)) {
    let segment: string
    try {
      segment = decodeURIComponent(raw)
    } catch {
      return 400
    }

    if (segment === '') continue
    if (segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) return 403
    segments.push(segment)
  }

  return segments
}

/** A client whose socket makes no progress for this long is dropped. */
export const SEND_TIMEOUT_MS = 10_000

/**
 * Counts the body bytes and logs the request exactly once, on 'close', which
 * fires whatever the response path: sent in full ('finish' comes first),
 * an error, or a client that closed or reset early (aborted: true).
 */
function countAndLog(req: IncomingMessage, res: ServerResponse, log: (entry: AccessLogEntry) => void): void {
  let bytes = 0
  // Read now: once a reset socket is destroyed, its address is gone.
  const remote = req.socket.remoteAddress ?? '-'
  const write = res.write.bind(res)
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (chunk) bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).length
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest)
  }) as typeof res.write
  const end = res.end.bind(res)
  res.end = ((chunk: unknown, ...rest: unknown[]) => {
    if (chunk && typeof chunk !== 'function') bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).length
    return (end as (...a: unknown[]) => ServerResponse)(chunk, ...rest)
  }) as typeof res.end
  res.once('close', () => {
    const entry: AccessLogEntry = {time: new Date().toISOString(), remote, method: req.method ?? '-', path: req.url ?? '-', status: res.statusCode, bytes}
    if (!res.writableFinished) entry.aborted = true
    log(entry)
  })
}

export async function serveLookaside(options: {dir: string; host: string; port: number; sendTimeoutMs?: number; log: (entry: AccessLogEntry) => void}): Promise<LookasideServer> {
  const {createServer} = await import('node:http')
  const info = await stat(options.dir).catch(() => undefined)
  if (!info?.isDirectory()) throw new ImagetrustError(`--dir ${options.dir} is not a directory`)
  const root = await realpath(options.dir)
  let requests = 0

  const respond = (req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void => {
    res.writeHead(status, {'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', ...headers})
    res.end(req.method === 'HEAD' || status === 204 ? undefined : `${status}\n`)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return respond(req, res, 405, {allow: 'GET, HEAD'})
    const segments = requestSegments(req.url ?? '/')
    if (typeof segments === 'number') return respond(req, res, segments)
    const candidate = path.join(root, ...segments)
    // Symlinks resolved first, so a file outside DIR is not even opened...
    const resolved = await realpath(candidate).catch(() => undefined)
    if (resolved === undefined) return respond(req, res, 404)
    if (resolved !== root && !resolved.startsWith(`${root}/`)) return respond(req, res, 403)
    let handle
    try {
      handle = await open(candidate, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
    } catch {
      return respond(req, res, 404)
    }

    try {
      // ...and checked again on the open descriptor, in case a link was swapped in between.
      const real = await readlink(`/proc/self/fd/${handle.fd}`)
      if (real !== root && !real.startsWith(`${root}/`)) return respond(req, res, 403)
      const fileInfo = await handle.stat()
      if (!fileInfo.isFile()) return respond(req, res, 404)
      const headers = {'content-type': contentType(real), 'content-length': fileInfo.size, 'last-modified': fileInfo.mtime.toUTCString(), 'x-content-type-options': 'nosniff'}
      res.writeHead(200, headers)
      if (req.method === 'HEAD') {
        res.end()
        return
      }

      // pipeline() destroys both ends when the client goes away, so the
      // descriptor is closed below however the response ends.
      await pipeline(handle.createReadStream({autoClose: false}), res).catch(() => res.destroy())
    } finally {
      await handle.close().catch(() => undefined)
    }
  }

  const server: Server = createServer((req, res) => {
    requests++
    countAndLog(req, res, options.log)
    handle(req, res).catch(() => {
      if (!res.headersSent) respond(req, res, 500)
      else res.destroy()
    })
  })
  server.requestTimeout = 30_000
  server.headersTimeout = 10_000
  // The send timeout: a socket that makes no progress (a client that stops
  // reading) is destroyed, which ends the response and closes its file.
  server.timeout = options.sendTimeoutMs ?? SEND_TIMEOUT_MS

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new ImagetrustError(`cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`)))
    server.listen(options.port, options.host, () => resolve())
  })
  const address = server.address() as {address: string; port: number}
  const host = address.address.includes(':') ? `[${address.address}]` : address.address
  return {
    url: `http://${host}:${address.port}`,
    dir: root,
    get requests() {
      return requests
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
        // Requests still in flight get a few seconds.
        setTimeout(() => server.closeAllConnections(), 5000).unref()
      }),
  }
}

export function parseListen(listen: string): {host: string; port: number} {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(listen)
  const port = match ? Number(match[3]) : Number.NaN
  if (!match || port > 65_535) throw new ImagetrustError(`--listen ${listen}: give HOST:PORT, e.g. 127.0.0.1:8000 ([::1]:8000 for IPv6; port 0 picks a free one)`)
  return {host: match[1] ?? match[2], port}
}

/**
 * `imagetrust lookaside serve` as a real process on 127.0.0.1: what it serves,
 * and what it refuses (traversal, plain and percent-encoded, symlinks out of
 * DIR, other methods). A secret file beside DIR proves nothing outside is read.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {mkdir, mkdtemp, readdir, rm, symlink, truncate, writeFile} from 'node:fs/promises'
import {request} from 'node:http'
import {connect} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {REPO_ROOT} from '../support/lab.ts'

const SECRET = 'TOP-SECRET-OUTSIDE-THE-WEB-ROOT'

/** A raw request: the path is sent exactly as given (fetch would normalise ../ away). */
function raw(port: number, method: string, target: string): Promise<{status: number; body: string; headers: Record<string, unknown>}> {
  return new Promise((resolve, reject) => {
    const req = request({host: '127.0.0.1', port, method, path: target}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode!, body: Buffer.concat(chunks).toString(), headers: res.headers}))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('lookaside serve', () => {
  let dir: string
  let server: ChildProcess
  let port = 0
  const log: string[] = []

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-serve-'))
    const web = path.join(dir, 'web')
    await mkdir(path.join(web, 'apps/app@sha256=abcd'), {recursive: true})
    await writeFile(path.join(web, 'apps/app@sha256=abcd/signature-1'), 'SIGNATURE-BYTES')
    await writeFile(path.join(web, 'index.json'), '{}')
    await writeFile(path.join(dir, 'secret.txt'), SECRET)
    await mkdir(path.join(dir, 'outside'))
    await writeFile(path.join(dir, 'outside/signature-1'), SECRET)
    await symlink(path.join(dir, 'secret.txt'), path.join(web, 'escape'))
    await symlink('../../outside', path.join(web, 'apps/escaped-dir'))
    await symlink('../secret.txt', path.join(web, 'relative-escape'))
    await symlink('apps/app@sha256=abcd/signature-1', path.join(web, 'inside-link'))
    server = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/run.js'), 'lookaside', 'serve', '--dir', web, '--listen', '127.0.0.1:0', '--json'], {stdio: ['ignore', 'pipe', 'inherit']})
    let buffered = ''
    port = await new Promise<number>((resolve, reject) => {
      server.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString()
        const lines = buffered.split('\n')
        buffered = lines.pop()!
        // JSON lines while it runs; oclif's pretty-printed result at the end.
        for (const line of lines.filter((l) => l.startsWith('{"event"'))) {
          log.push(line)
          const event = JSON.parse(line)
          if (event.event === 'listening') resolve(Number(new URL(event.url).port))
        }
      })
      server.once('exit', (code) => reject(new Error(`lookaside serve exited with ${code}`)))
    })
  })

  after(async () => {
    if (server?.pid && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve))
      process.kill(server.pid, 'SIGTERM')
      await exited
    }

    await rm(dir, {recursive: true, force: true})
  })

  it('serves signature files with GET and HEAD, and 404s what is missing', async () => {
    const got = await raw(port, 'GET', '/apps/app@sha256=abcd/signature-1')
    assert.equal(got.status, 200)
    assert.equal(got.body, 'SIGNATURE-BYTES')
    assert.equal(got.headers['content-type'], 'application/octet-stream')
    // The '@' and '=' as containers/image escapes them.
    assert.equal((await raw(port, 'GET', '/apps/app%40sha256%3Dabcd/signature-1')).status, 200)
    const head = await raw(port, 'HEAD', '/apps/app@sha256=abcd/signature-1')
    assert.equal(head.status, 200)
    assert.equal(head.headers['content-length'], '15')
    assert.equal(head.body, '')
    assert.equal((await raw(port, 'GET', '/index.json')).headers['content-type'], 'application/json')
    assert.equal((await raw(port, 'GET', '/apps/app@sha256=abcd/signature-2')).status, 404)
    assert.equal((await raw(port, 'GET', '/apps/')).status, 404, 'no directory listings')
    assert.equal((await raw(port, 'GET', '/inside-link')).status, 200, 'a symlink that stays inside DIR is served')
  })

  it('refuses other methods with 405', async () => {
    for (const method of ['PUT', 'POST', 'DELETE']) {
      const res = await raw(port, method, '/apps/app@sha256=abcd/signature-1')
      assert.equal(res.status, 405)
      assert.equal(res.headers.allow, 'GET, HEAD')
    }
  })

  const ATTACKS = [
    '/../secret.txt',
    '/apps/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/..%2fsecret.txt',
    '/..%2Fsecret.txt',
    '/apps/..%2f..%2fsecret.txt',
    '/%2e%2e%2fsecret.txt',
    '/.%2e/secret.txt',
    '/..%5csecret.txt',
    '/secret.txt%00',
    '/escape',
    '/relative-escape',
    '/apps/escaped-dir/signature-1',
    '/%E0%A4%A',
  ]
  for (const target of ATTACKS) {
    it(`refuses ${target} (403/404/400), reading nothing outside DIR`, async () => {
      const res = await raw(port, 'GET', target)
      assert.ok([400, 403, 404].includes(res.status), `${target}: HTTP ${res.status}`)
      assert.ok(!res.body.includes(SECRET), `${target} leaked the secret`)
    })
  }

  it('writes one access log line per request', async () => {
    const requests = () => log.map((l) => JSON.parse(l)).filter((e) => e.event === 'request')
    // The line is written once the response is sent: let the earlier tests' lines arrive.
    const settle = async () => {
      for (let n = -1; n !== requests().length; ) {
        n = requests().length
        await new Promise((r) => setTimeout(r, 150))
      }
    }

    await settle()
    const before = requests().length
    await raw(port, 'GET', '/index.json')
    await raw(port, 'GET', '/nothing')
    await settle()
    const entries = requests()
    assert.equal(entries.length, before + 2)
    assert.deepEqual(entries.slice(-2).map((e) => [e.method, e.path, e.status]), [['GET', '/index.json', 200], ['GET', '/nothing', 404]])
  })

  it('stops gracefully on SIGTERM (exit 0) with a summary', async () => {
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)))
    process.kill(server.pid!, 'SIGTERM')
    assert.equal(await exited, 0)
  })
})

/** `lookaside serve` under `ulimit -n 48`, with its JSON log lines collected. */
async function startLimited(web: string, extra: string[], text: string[] = []): Promise<{child: ChildProcess; port: number; log: Array<Record<string, unknown>>}> {
  const cmd = `ulimit -n 48 && exec "$0" "$@"`
  const child = spawn('bash', ['-c', cmd, process.execPath, path.join(REPO_ROOT, 'bin/run.js'), 'lookaside', 'serve', '--dir', web, '--listen', '127.0.0.1:0', ...(extra.includes('--text') ? [] : ['--json']), ...extra.filter((a) => a !== '--text')], {stdio: ['ignore', 'pipe', 'inherit']})
  const log: Array<Record<string, unknown>> = []
  let buffered = ''
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop()!
      text.push(...lines)
      for (const line of lines.filter((l) => l.startsWith('{"event"'))) {
        const event = JSON.parse(line)
        if (event.event === 'request') log.push(event)
        if (event.event === 'listening') resolve(Number(new URL(event.url).port))
      }

      const listening = /^listening on (http:\S+),/.exec(lines.join('\n'))
      if (listening) resolve(Number(new URL(listening[1]).port))
    })
    child.once('exit', (code) => reject(new Error(`lookaside serve exited with ${code}`)))
  })
  return {child, port, log}
}

/** Asks for PATH, reads the first chunk, stops reading, then resets the connection. */
function readThenReset(port: number, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`))
    socket.once('data', () => {
      socket.pause()
      setTimeout(() => {
        socket.resetAndDestroy()
        resolve()
      }, 20)
    })
    socket.once('error', reject)
  })
}

const openFiles = async (pid: number) => (await readdir(`/proc/${pid}/fd`)).length
const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 15_000) => {
  for (const start = Date.now(); !(await ok()); await new Promise((r) => setTimeout(r, 100))) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`)
  }
}

describe('lookaside serve against clients that stop reading', () => {
  let dir: string
  let web: string
  const children: ChildProcess[] = []

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-serve-slow-'))
    web = path.join(dir, 'web')
    await mkdir(web)
    await writeFile(path.join(web, 'big'), Buffer.alloc(5 * 1024 * 1024, 'x'))
    // Sparse: more than loopback's socket buffers can swallow.
    await writeFile(path.join(web, 'huge'), '')
    await truncate(path.join(web, 'huge'), 256 * 1024 * 1024)
    await writeFile(path.join(web, 'small'), 'ok')
  })

  after(async () => {
    for (const child of children) {
      if (child.pid && child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        process.kill(child.pid, 'SIGTERM')
        await exited
      }
    }

    await rm(dir, {recursive: true, force: true})
  })

  it('closes the file of every client that resets, logs each request once, and still serves under ulimit -n 48', async () => {
    const {child, port, log} = await startLimited(web, [])
    children.push(child)
    assert.equal((await raw(port, 'GET', '/small')).status, 200)
    await until('the first log line', () => log.length === 1)
    const baseline = await openFiles(child.pid!)
    for (let i = 0; i < 40; i++) await readThenReset(port, '/big')
    await until('a log line for every reset request', () => log.length === 41)
    await until('the descriptors to be closed', async () => (await openFiles(child.pid!)) <= baseline)
    const resets = log.slice(1)
    assert.ok(resets.every((e) => e.path === '/big' && e.status === 200 && e.aborted === true), JSON.stringify(resets[0]))
    assert.ok(resets.every((e) => (e.bytes as number) < 5 * 1024 * 1024))
    assert.equal((await raw(port, 'GET', '/small')).body, 'ok')
    await until('the last log line', () => log.length === 42)
    assert.deepEqual(log.map((e) => e.path).filter((p) => p !== '/big'), ['/small', '/small'])
    assert.equal(log.at(-1)!.aborted, undefined)
  })

  it('drops a client that stops reading after --send-timeout, and logs it', async () => {
    const {child, port, log} = await startLimited(web, ['--send-timeout', '1'])
    children.push(child)
    // A paused client sees no close; the server's log line says it gave up.
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /huge HTTP/1.1\r\nHost: x\r\n\r\n'))
    socket.pause()
    socket.on('error', () => undefined)
    try {
      await until('the server to drop the stalled client', () => log.length === 1, 15_000)
    } finally {
      socket.destroy()
    }

    assert.equal(log[0].path, '/huge')
    assert.equal(log[0].aborted, true)
  })

  it('the text log keeps a quote in the path from breaking its quoted field', async () => {
    const text: string[] = []
    const {child, port} = await startLimited(web, ['--text'], text)
    children.push(child)
    assert.equal((await raw(port, 'GET', '/sm"all%22')).status, 404)
    await until('the log line', () => text.some((l) => l.includes('404')))
    assert.match(text.find((l) => l.includes('404'))!, /"GET \/sm\\x22all%22" 404 4$/)
  })
})

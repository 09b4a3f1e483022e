/**
 * `imagetrust lookaside serve` as a real process on 127.0.0.1: what it serves,
 * and what it refuses (traversal, plain and percent-encoded, symlinks out of
 * DIR, other methods). A secret file beside DIR proves nothing outside is read.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import {request} from 'node:http'
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

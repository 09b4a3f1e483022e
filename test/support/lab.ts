/**
 * A signing lab on loopback, shared by the e2e tests and the demo: a real
 * docker-registry, real GPG keys, images pushed with real `podman push
 * --sign-by`, a lookaside web server, and pulls by real podman and skopeo run
 * in a private mount namespace where /etc/containers and /etc/pki come from a
 * sandbox root. The machine's own /etc is never written. Every process
 * started here is stopped by its PID in stop().
 */
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {createServer} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import type {GpgKind} from './gpg.ts'

/** What containers/image says when the policy (or its keys) refuses an image. */
export const POLICY_REJECTION = /Source image rejected|rejected by policy|invalid policy in/

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Exit code reported for a command killed at its timeout (as timeout(1) does). */
export const TIMED_OUT = 124

export function run(cmd: string, args: string[], options: {env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeoutMs?: number} = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const limits = options.timeoutMs ? {timeout: options.timeoutMs, killSignal: 'SIGKILL' as const} : {}
    const child = execFile(cmd, args, {env: options.env ?? process.env, cwd: options.cwd, maxBuffer: 64 * 1024 * 1024, ...limits}, (error, stdout, stderr) => {
      const killed = Boolean(options.timeoutMs && (error as {killed?: boolean} | null)?.killed)
      const code = error ? (killed ? TIMED_OUT : typeof (error as {code?: unknown}).code === 'number' ? ((error as {code: number}).code) : 127) : 0
      // 127 hides why: a spawn error (EAGAIN, ENOMEM) or a signal; say which.
      const why = code === 127 && error ? `\n[${cmd}: ${(error as {code?: unknown}).code ?? ''} ${(error as {signal?: unknown}).signal ?? ''} ${error.message}]` : ''
      resolve({code, stdout: String(stdout), stderr: String(stderr) + why})
    })
    if (options.input !== undefined) child.stdin?.end(options.input)
  })
}

async function mustRunIsolated(cmd: string, args: string[], options: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const result = await runIsolated(cmd, args, options)
  if (result.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${result.code}):\n${result.stderr}${result.stdout}`)
  return result
}

export async function mustRun(cmd: string, args: string[], options: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const result = await run(cmd, args, options)
  if (result.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${result.code}):\n${result.stderr}${result.stdout}`)
  return result
}

/**
 * Runs a command in a private mount namespace whose /etc is an overlay: what
 * it writes there (rootful podman creates /etc/containers/networks, for one)
 * lands in a throw-away layer, never in this machine's /etc.
 */
export async function runIsolated(cmd: string, args: string[], options: {env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number} = {}): Promise<RunResult> {
  if (process.getuid?.() !== 0) return run(cmd, args, options)
  const layer = await mkdtemp('/tmp/itl-')
  try {
    // /var/lib too: skopeo keeps a blob-info cache in /var/lib/containers/cache.
    const script = [
      'set -e',
      `mkdir -p ${layer}/u ${layer}/w ${layer}/vu ${layer}/vw`,
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${layer}/u,workdir=${layer}/w /etc`,
      `mount -t overlay overlay -o lowerdir=/var/lib,upperdir=${layer}/vu,workdir=${layer}/vw /var/lib`,
      'exec "$@"',
    ].join('\n')
    return await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'isolated', cmd, ...args], options)
  } finally {
    await rm(layer, {recursive: true, force: true})
  }
}

/** The built CLI, as a user runs it (isolated from this machine's /etc: it may run podman). */
export function imagetrust(args: string[], env?: NodeJS.ProcessEnv, options: {timeoutMs?: number} = {}): Promise<RunResult> {
  return runIsolated(process.execPath, [path.join(REPO_ROOT, 'bin/run.js'), ...args], {env, timeoutMs: options.timeoutMs})
}

/** Where the .deb and .rpm install imagetrust: no test may install it on this machine (only in a chroot or a namespace's own /usr). */
const PACKAGE_PATHS = ['/usr/bin/imagetrust', '/usr/lib/imagetrust', '/usr/share/imagetrust', '/usr/lib/systemd/system/imagetrust-check.timer', '/var/cache/imagetrust']

/** A fingerprint of this machine's /etc/containers (and /etc/crio, /var/lib/containers, imagetrust's package paths), to prove the tests leave them alone. */
export async function etcContainersDigest(): Promise<string> {
  const {hashTree} = await import('./tree.ts')
  const installed = PACKAGE_PATHS.filter((file) => existsSync(file))
  return JSON.stringify([await hashTree('/etc/containers'), await hashTree('/etc/crio'), await hashTree('/var/lib/containers'), installed])
}

/** A free TCP port on 127.0.0.1 (for servers the tests start). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

async function waitFor(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url)
      if (response.status < 500) return
    } catch {}

    await sleep(100)
  }

  throw new Error(`${url} did not come up within ${timeoutMs} ms`)
}

export interface GpgKey {
  name: string
  home: string
  fingerprint: string
  publicArmored: string
}

export class Lab {
  readonly processes: ChildProcess[] = []
  private readonly gpgHomes: string[] = []
  registryPort = 0
  lookasidePort = 0
  private constructor(
    readonly dir: string,
    private readonly etcBefore: string,
  ) {}

  static async create(prefix = 'imagetrust-lab-'): Promise<Lab> {
    return new Lab(await mkdtemp(path.join(os.tmpdir(), prefix)), await etcContainersDigest())
  }

  /** A lab with its registry and lookaside server already running. */
  static async started(prefix?: string): Promise<Lab> {
    const lab = await Lab.create(prefix)
    await lab.startRegistry()
    await lab.startLookasideServer()
    return lab
  }

  get registry(): string {
    return `127.0.0.1:${this.registryPort}`
  }

  get lookasideUrl(): string {
    return `http://127.0.0.1:${this.lookasidePort}`
  }

  get stagingDir(): string {
    return path.join(this.dir, 'lookaside')
  }

  private track(child: ChildProcess): ChildProcess {
    this.processes.push(child)
    return child
  }

  async startRegistry(): Promise<void> {
    this.registryPort = await freePort()
    const config = path.join(this.dir, 'registry.yml')
    await writeFile(
      config,
      [
        'version: 0.1',
        'log: {level: error}',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${path.join(this.dir, 'registry-data')}`,
        '  delete: {enabled: true}',
        'http:',
        `  addr: 127.0.0.1:${this.registryPort}`,
        '',
      ].join('\n'),
    )
    this.track(spawn('docker-registry', ['serve', config], {stdio: 'ignore'}))
    await waitFor(`http://${this.registry}/v2/`)
  }

  async stopRegistry(): Promise<void> {
    const child = this.processes.find((p) => p.spawnargs[0] === 'docker-registry' && p.exitCode === null)
    if (child) await stopChild(child)
  }

  async startLookasideServer(): Promise<void> {
    await mkdir(this.stagingDir, {recursive: true})
    const child = this.track(spawn(process.execPath, [path.join(REPO_ROOT, 'scripts/serve-static.mjs'), this.stagingDir, '0'], {stdio: ['ignore', 'pipe', 'inherit']}))
    this.lookasidePort = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (chunk: Buffer) => {
        const match = /listening (\d+)/.exec(chunk.toString())
        if (match) resolve(Number(match[1]))
        else reject(new Error(`lookaside server said: ${chunk}`))
      })
      child.once('exit', (code) => reject(new Error(`lookaside server exited with ${code}`)))
    })
  }

  /** A GPG key whose primary key signs (no subkey): what containers/image < 5.37 accepts. */
  async makeGpgKey(name: string, options: {keyType?: GpgKind} = {}): Promise<GpgKey> {
    const {makeGpgKey} = await import('./gpg.ts')
    const key = await makeGpgKey(this.dir, name, options.keyType ?? 'ed25519')
    this.gpgHomes.push(key.home)
    return key
  }

  private podmanArgs(): string[] {
    const store = path.join(this.dir, 'podman')
    // Its own --tmpdir: `system reset` in stop() removes the tmpdir, and the default /run/libpod is every other test's too.
    return ['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--tmpdir', path.join(store, 'tmp'), '--storage-driver', 'vfs', '--events-backend', 'file', '--cgroup-manager', 'cgroupfs']
  }

  /** The signing host's environment: its own HOME with a registries.d that stages signatures in stagingDir. */
  private async signerEnv(gnupgHome?: string): Promise<NodeJS.ProcessEnv> {
    const home = path.join(this.dir, 'signer-home')
    const regd = path.join(home, '.config/containers/registries.d')
    await mkdir(regd, {recursive: true})
    await writeFile(path.join(regd, 'staging.yaml'), `docker:\n  "${this.registry}":\n    lookaside-staging: file://${this.stagingDir}\n`)
    await writeFile(path.join(home, '.config/containers/policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    return {...process.env, HOME: home, ...(gnupgHome ? {GNUPGHOME: gnupgHome} : {})}
  }

  /** Builds a one-file image from scratch in the lab's own podman storage. */
  async buildImage(tag: string, content: string): Promise<void> {
    const rootfs = path.join(this.dir, `rootfs-${content.replaceAll(/\W/g, '')}`)
    await mkdir(rootfs, {recursive: true})
    await writeFile(path.join(rootfs, 'hello.txt'), `${content}\n`)
    const tar = `${rootfs}.tar`
    await mustRun('tar', ['-C', rootfs, '--owner=0', '--group=0', '-cf', tar, '.'])
    await mustRunIsolated('podman', [...this.podmanArgs(), 'import', '--quiet', tar, tag], {env: await this.signerEnv()})
  }

  /**
   * An image that can run `sleep` (the binary and the libraries it needs),
   * for tests that start containers. `content` makes its digest distinct.
   */
  async buildRunnableImage(tag: string, content: string): Promise<void> {
    const rootfs = path.join(this.dir, `rootfs-run-${content.replaceAll(/\W/g, '')}`)
    const {stdout} = await mustRun('ldd', ['/bin/sleep'])
    const files = ['/bin/sleep', ...[...stdout.matchAll(/(\/\S+\.so[.\d]*)/g)].map((m) => m[1])]
    for (const file of files) {
      await mkdir(path.join(rootfs, path.dirname(file)), {recursive: true})
      await mustRun('cp', ['-L', file, path.join(rootfs, file)])
    }

    await writeFile(path.join(rootfs, 'hello.txt'), `${content}\n`)
    const tar = `${rootfs}.tar`
    await mustRun('tar', ['-C', rootfs, '--owner=0', '--group=0', '-cf', tar, '.'])
    await mustRunIsolated('podman', [...this.podmanArgs(), 'import', '--quiet', tar, tag], {env: await this.signerEnv()})
  }

  /** An image of the given files (source path → path in the image), e.g. a pause binary. */
  async buildImageFromFiles(tag: string, files: Record<string, string>): Promise<void> {
    const rootfs = await mkdtemp(path.join(this.dir, 'rootfs-files-'))
    for (const [source, dest] of Object.entries(files)) {
      await mkdir(path.join(rootfs, path.dirname(dest)), {recursive: true})
      await mustRun('cp', ['-L', source, path.join(rootfs, dest)])
    }

    const tar = `${rootfs}.tar`
    await mustRun('tar', ['-C', rootfs, '--owner=0', '--group=0', '-cf', tar, '.'])
    await mustRunIsolated('podman', [...this.podmanArgs(), 'import', '--quiet', tar, tag], {env: await this.signerEnv()})
  }

  /** podman push, signed with --sign-by when a key is given. */
  async push(localTag: string, repoAndTag: string, key?: GpgKey): Promise<string> {
    const dest = `${this.registry}/${repoAndTag}`
    const sign = key ? ['--sign-by', key.fingerprint] : []
    await mustRunIsolated('podman', [...this.podmanArgs(), 'push', '--quiet', '--tls-verify=false', ...sign, localTag, `docker://${dest}`], {
      env: await this.signerEnv(key?.home),
    })
    return dest
  }

  /**
   * Runs a command with /etc/containers and /etc/pki taken from a sandbox root,
   * in a private mount namespace. With varLib, /var/lib is overlaid too and
   * /var/lib/imagetrust comes from the root, so imagetrust itself can run there with --root /.
   */
  async inSandbox(root: string, cmd: string[], options: {home?: string; varLib?: boolean} = {}): Promise<RunResult> {
    const upper = await mkdtemp(path.join(this.dir, 'etc-upper-'))
    await mkdir(path.join(upper, 'u'))
    await mkdir(path.join(upper, 'w'))
    await mkdir(path.join(root, 'etc/containers'), {recursive: true})
    await mkdir(path.join(root, 'etc/pki'), {recursive: true})
    const home = path.join(this.dir, 'empty-home')
    await mkdir(home, {recursive: true})
    const script = [
      'set -e',
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${upper}/u,workdir=${upper}/w /etc`,
      'mkdir -p /etc/containers /etc/pki',
      `mount --bind ${root}/etc/containers /etc/containers`,
      `mount --bind ${root}/etc/pki /etc/pki`,
      // /var/lib is always overlaid (skopeo's blob-info cache); with varLib, /var/lib/imagetrust comes from the root.
      `mkdir -p ${upper}/vu ${upper}/vw`,
      `mount -t overlay overlay -o lowerdir=/var/lib,upperdir=${upper}/vu,workdir=${upper}/vw /var/lib`,
      ...(options.varLib ? [`mkdir -p ${root}/var/lib/imagetrust /var/lib/imagetrust`, `mount --bind ${root}/var/lib/imagetrust /var/lib/imagetrust`] : []),
      'exec "$@"',
    ].join('\n')
    const result = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sandbox', ...cmd], {
      env: {...process.env, HOME: options.home ?? home, GNUPGHOME: path.join(home, 'no-gnupg')},
    })
    await rm(upper, {recursive: true, force: true})
    return result
  }

  /**
   * A pull as the host would do it, reading the sandbox root's policy,
   * registries.d and keys. A failure that is not a policy decision (the lab
   * itself broke) throws, so a test that expects a rejection cannot pass by accident.
   */
  async pull(root: string, image: string, engine: 'skopeo' | 'podman'): Promise<RunResult> {
    const result = await this.rawPull(root, image, engine)
    if (result.code !== 0 && !POLICY_REJECTION.test(result.stderr)) {
      throw new Error(`${engine} pull of ${image} failed for a reason other than policy (exit ${result.code}):\n${result.stderr}`)
    }

    return result
  }

  async rawPull(root: string, image: string, engine: 'skopeo' | 'podman'): Promise<RunResult> {
    if (engine === 'skopeo') {
      const out = await mkdtemp(path.join(this.dir, 'pulled-'))
      const result = await this.inSandbox(root, ['skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${image}`, `dir:${out}`])
      await rm(out, {recursive: true, force: true})
      return result
    }

    // podman refuses a runroot longer than 50 characters, so keep the store path short.
    const store = await mkdtemp('/tmp/itp-')
    const result = await this.inSandbox(root, [
      'podman',
      '--root',
      path.join(store, 'root'),
      '--runroot',
      path.join(store, 'run'),
      '--tmpdir',
      path.join(store, 'tmp'),
      '--storage-driver',
      'vfs',
      '--events-backend',
      'file',
      '--cgroup-manager',
      'cgroupfs',
      'pull',
      '--quiet',
      '--tls-verify=false',
      image,
    ])
    await rm(store, {recursive: true, force: true})
    return result
  }

  async stop(): Promise<void> {
    for (const child of this.processes) await stopChild(child)
    // Signing with a key started its gpg-agent again.
    const {stopGpgAgent} = await import('./gpg.ts')
    for (const home of this.gpgHomes) await stopGpgAgent(home)
    // The podman store can hold read-only layers; podman cleans what it made.
    await runIsolated('podman', [...this.podmanArgs(), 'system', 'reset', '--force']).catch(() => undefined)
    await rm(this.dir, {recursive: true, force: true})
    if ((await etcContainersDigest()) !== this.etcBefore) throw new Error("this machine's /etc/containers changed during the tests")
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  process.kill(child.pid, 'SIGTERM')
  const timer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

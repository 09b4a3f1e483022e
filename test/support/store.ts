import {mkdtemp, rm} from 'node:fs/promises'
import path from 'node:path'

import {runIsolated} from './lab.ts'

/** A throw-away podman store; every container started in it is removed by ID in cleanup(). */
export class Store {
  readonly containers: string[] = []
  private constructor(
    readonly dir: string,
    /** Extra environment for every podman run (CONTAINERS_CONF, say). */
    readonly env: Record<string, string> = {},
  ) {}

  static async create(env: Record<string, string> = {}): Promise<Store> {
    // podman refuses a runroot longer than 50 characters.
    return new Store(await mkdtemp('/tmp/ita-'), env)
  }

  get flags(): string[] {
    return ['--storage-root', path.join(this.dir, 'root'), '--runroot', path.join(this.dir, 'run'), '--storage-driver', 'vfs']
  }

  async podman(args: string[]): Promise<string> {
    // Its own --tmpdir: another store's `podman system reset` empties the shared /run/libpod, and
    // podman then takes every container of a store using it for stopped ("Created").
    // Later podman calls without --tmpdir (audit's) read it from the store's database.
    const global = ['--root', path.join(this.dir, 'root'), '--runroot', path.join(this.dir, 'run'), '--tmpdir', path.join(this.dir, 'tmp'), '--storage-driver', 'vfs', '--events-backend', 'file', '--cgroup-manager', 'cgroupfs']
    const result = await runIsolated('podman', [...global, ...args], Object.keys(this.env).length > 0 ? {env: {...process.env, ...this.env}} : {})
    if (result.code !== 0) throw new Error(`podman ${args.join(' ')} failed (${result.code}): ${result.stderr}`)
    return result.stdout.trim()
  }

  async run(image: string): Promise<string> {
    const id = await this.podman(['run', '-d', '--runtime', 'runc', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', image, '/bin/sleep', '600'])
    this.containers.push(id)
    return id
  }

  async remove(id: string): Promise<void> {
    await this.podman(['rm', '--force', '--time', '0', id])
    this.containers.splice(this.containers.indexOf(id), 1)
  }

  async cleanup(): Promise<void> {
    for (const id of [...this.containers]) await this.remove(id).catch(() => undefined)
    await this.podman(['system', 'reset', '--force']).catch(() => undefined)
    await rm(this.dir, {recursive: true, force: true})
  }
}


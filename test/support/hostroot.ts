import {chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {capabilitiesFor} from '../../src/host/capabilities.ts'
import {applyTrust, preparePlan} from '../../src/plan/converge.ts'

export const FIXTURES = path.resolve(import.meta.dirname, '../fixtures')
/** Debian 12's containers/image, fixed so unit tests do not depend on what is installed. */
export const CIMAGE_5_23 = capabilitiesFor([5, 23], 'test')
export const CIMAGE_5_21 = capabilitiesFor([5, 21], 'test')

/** A throw-away host root plus a working directory for trust files and keys. */
export class TestHost {
  private constructor(readonly dir: string) {}

  static async create(): Promise<TestHost> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'imagetrust-unit-'))
    await mkdir(path.join(dir, 'root'), {recursive: true})
    return new TestHost(dir)
  }

  get root(): string {
    return path.join(this.dir, 'root')
  }

  path(hostPath: string): string {
    return path.join(this.root, hostPath)
  }

  async write(hostPath: string, content: string, mode?: number): Promise<void> {
    const file = this.path(hostPath)
    await mkdir(path.dirname(file), {recursive: true})
    await writeFile(file, content)
    if (mode !== undefined) await chmod(file, mode)
  }

  async fixture(name: string, hostPath: string): Promise<void> {
    await this.write(hostPath, await readFile(path.join(FIXTURES, name), 'utf8'))
  }

  async symlink(target: string, hostPath: string): Promise<void> {
    await mkdir(path.dirname(this.path(hostPath)), {recursive: true})
    await symlink(target, this.path(hostPath))
  }

  read(hostPath: string): Promise<string> {
    return readFile(this.path(hostPath), 'utf8')
  }

  async policy(): Promise<{default: unknown[]; transports?: Record<string, Record<string, unknown[]>>}> {
    return JSON.parse(await this.read('/etc/containers/policy.json'))
  }

  /** Writes a file beside the root (trust files, key sources); returns its path. */
  async local(name: string, content: string): Promise<string> {
    const file = path.join(this.dir, name)
    await writeFile(file, content)
    return file
  }

  apply(config: string, options: {capabilities?: typeof CIMAGE_5_23; replaceInvalid?: boolean; dryRun?: boolean; takeOver?: string[]} = {}) {
    return applyTrust({
      root: this.root,
      config,
      capabilities: options.capabilities ?? CIMAGE_5_23,
      replaceInvalid: options.replaceInvalid,
      dryRun: options.dryRun,
      takeOver: options.takeOver,
    })
  }

  plan(config: string, capabilities = CIMAGE_5_23) {
    return preparePlan({root: this.root, config, capabilities})
  }

  async remove(): Promise<void> {
    await rm(this.dir, {recursive: true, force: true})
  }
}

/** An OpenPGP key pair made in-process (the primary key signs). */
export async function makeKey(name: string): Promise<{publicKey: string; privateKey: string; fingerprint: string}> {
  const openpgp = await import('openpgp')
  const {publicKey, privateKey} = await openpgp.generateKey({type: 'ecc', curve: 'ed25519Legacy', userIDs: [{name, email: `${name}@example.test`}], format: 'armored'})
  const key = await openpgp.readKey({armoredKey: publicKey})
  return {publicKey, privateKey, fingerprint: key.getFingerprint().toUpperCase()}
}

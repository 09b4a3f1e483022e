/**
 * A real CRI-O from the engine lab, started by scripts/lab.sh in a private
 * mount namespace whose /etc/containers, /etc/crio and /etc/pki are a sandbox
 * host root's, so that `imagetrust apply --root ROOT` configures it. Stopped
 * by PID (crio-down waits until every process of its namespace is gone).
 */
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {REPO_ROOT, type RunResult, mustRun, run} from './lab.ts'
import {LAB_BIN, labBin} from './lab-bin.ts'

const LAB_SH = path.join(REPO_ROOT, 'scripts/lab.sh')

export class CrioLab {
  private constructor(
    readonly stateDir: string,
    readonly socket: string,
    /** A PATH whose first directory holds only the lab's crio and crictl. */
    readonly path: string,
  ) {}

  static async up(stateDir: string, hostRoot: string, options: {registry: string; pauseImage: string}): Promise<CrioLab> {
    const bin = path.join(stateDir, 'bin')
    await mkdir(bin, {recursive: true})
    for (const tool of ['crio', 'crictl']) {
      const target = await labBin(tool)
      await writeFile(path.join(bin, tool), `#!/bin/sh\nexec ${target} "$@"\n`, {mode: 0o755})
    }

    const {stdout} = await mustRun('bash', [LAB_SH, 'crio-up', stateDir, '--host-root', hostRoot, '--insecure-registry', options.registry, '--pause-image', options.pauseImage])
    return new CrioLab(stateDir, stdout.trim(), `${bin}:${process.env.PATH}`)
  }

  /** The environment under which imagetrust (and crictl) reach this CRI-O. */
  get env(): NodeJS.ProcessEnv {
    return {...process.env, PATH: this.path, CONTAINER_RUNTIME_ENDPOINT: this.socket}
  }

  crictl(args: string[]): Promise<RunResult> {
    return run(path.join(LAB_BIN, 'crictl'), ['--runtime-endpoint', this.socket, '--timeout', '60s', ...args])
  }

  async mustCrictl(args: string[]): Promise<string> {
    const result = await this.crictl(args)
    if (result.code !== 0) throw new Error(`crictl ${args.join(' ')} failed (${result.code}):\n${result.stderr}`)
    return result.stdout.trim()
  }

  /** Pulls in a Kubernetes namespace (through a pod config) or without one. */
  async pull(image: string, namespace?: string): Promise<RunResult> {
    const args = ['pull']
    if (namespace) {
      const file = path.join(this.stateDir, `pull-pod-${namespace}.json`)
      await writeFile(file, JSON.stringify({metadata: {name: 'pull', namespace, uid: `pull-${namespace}`, attempt: 1}}))
      args.push('--pod-config', file)
    }

    return this.crictl([...args, image])
  }

  /** The policy files CRI-O's debug log says it used, in order. */
  async policyPathsUsed(): Promise<string[]> {
    const log = await readFile(path.join(this.stateDir, 'crio.log'), 'utf8')
    return [...log.matchAll(/Using pull policy path for image \S+: \\"([^\\"]*)\\"/g)].map((m) => m[1])
  }

  /**
   * A pod in `namespace` running `command` from `image`: host network and a
   * PID namespace per container, so it needs no CNI and no infra container.
   */
  async runContainer(name: string, namespace: string, image: string, command: string[]): Promise<{pod: string; container: string}> {
    const namespaces = {network: 2, pid: 1}
    const pod = {metadata: {name, namespace, uid: `uid-${name}`, attempt: 1}, log_directory: path.join(this.stateDir, 'pod-logs', name), linux: {security_context: {namespace_options: namespaces}}}
    const container = {metadata: {name}, image: {image}, command, log_path: `${name}.log`, linux: {security_context: {namespace_options: namespaces}}}
    const podFile = path.join(this.stateDir, `pod-${name}.json`)
    const containerFile = path.join(this.stateDir, `container-${name}.json`)
    await writeFile(podFile, JSON.stringify(pod))
    await writeFile(containerFile, JSON.stringify(container))
    await this.mustCrictl(['pull', image])
    const podId = await this.mustCrictl(['runp', podFile])
    const containerId = await this.mustCrictl(['create', podId, containerFile, podFile])
    await this.mustCrictl(['start', containerId])
    return {pod: podId, container: containerId}
  }

  async down(): Promise<void> {
    await mustRun('bash', [LAB_SH, 'crio-down', this.stateDir])
  }
}

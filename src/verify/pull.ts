import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {runTool} from '../exec/run-tool.js'
import type {PullOutcome} from './classify.js'
import type {VerifyContext} from './context.js'

export type PullEngine = 'podman' | 'skopeo' | 'crictl'

export interface PullOptions {
  tlsVerify: boolean
  /** CRI-O: pull as a pod in this Kubernetes namespace, so its per-namespace policy applies. */
  namespace?: string
}

/**
 * One test pull. podman pulls into a throw-away store, so the host's image
 * storage never changes; skopeo copies to a throw-away dir:; crictl pulls into
 * CRI-O's storage and removes the image afterwards unless it was already there.
 */
export async function testPull(engine: PullEngine, image: string, context: VerifyContext, options: PullOptions): Promise<PullOutcome> {
  const work = await mkdtemp(path.join(context.scratch, `${engine}-`))
  try {
    if (engine === 'skopeo') {
      const args = [
        ...(context.policyPath ? ['--policy', context.policyPath] : []),
        ...(context.registriesDir ? ['--registries.d', context.registriesDir] : []),
        'copy',
        '--quiet',
        ...(options.tlsVerify ? [] : ['--src-tls-verify=false']),
        `docker://${image}`,
        `dir:${path.join(work, 'image')}`,
      ]
      return outcome(await runTool('skopeo', args, {allowFailure: true, timeoutMs: 300_000}))
    }

    if (engine === 'podman') {
      const args = [
        '--root',
        path.join(work, 'root'),
        '--runroot',
        path.join(work, 'run'),
        '--storage-driver',
        'vfs',
        '--events-backend',
        'file',
        'pull',
        '--quiet',
        ...(context.policyPath ? ['--signature-policy', context.policyPath] : []),
        ...(options.tlsVerify ? [] : ['--tls-verify=false']),
        image,
      ]
      const env = context.home ? {...process.env, HOME: context.home} : undefined
      const result = await runTool('podman', args, {allowFailure: true, env, timeoutMs: 300_000})
      // The store holds read-only layers; let podman remove what it made.
      await runTool('podman', ['--root', path.join(work, 'root'), '--runroot', path.join(work, 'run'), '--storage-driver', 'vfs', 'system', 'reset', '--force'], {
        allowFailure: true,
      }).catch(() => undefined)
      return outcome(result)
    }

    const present = (await runTool('crictl', ['inspecti', image], {allowFailure: true})).exitCode === 0
    const podConfig = []
    if (options.namespace) {
      const file = path.join(work, 'pod.json')
      const pod = {metadata: {name: 'imagetrust-verify', namespace: options.namespace, uid: `imagetrust-${process.pid}`, attempt: 1}}
      await writeFile(file, JSON.stringify(pod))
      podConfig.push('--pod-config', file)
    }

    const result = await runTool('crictl', ['pull', ...podConfig, image], {allowFailure: true, timeoutMs: 300_000})
    if (result.exitCode === 0 && !present) await runTool('crictl', ['rmi', image], {allowFailure: true})
    return outcome(result)
  } finally {
    await rm(work, {recursive: true, force: true})
  }
}

function outcome(result: {exitCode: number; stderr: string; stdout: string}): PullOutcome {
  return {accepted: result.exitCode === 0, message: result.exitCode === 0 ? '' : `${result.stderr}\n${result.stdout}`.trim()}
}

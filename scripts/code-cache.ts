/**
 * The representative run both forms make their V8 code cache from (scripts/build-bundle.ts for
 * the npm form, scripts/dist.ts for the single executable): an `apply` and then a `check` on a
 * throw-away root, the cache written as the check exits, so it holds the functions they compiled
 * on the way, not just the top level. Then a second check must report that V8 took it.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** How to run one form: its command line, and the environment that makes it write the cache where it should. */
export interface CliForm {
  command: string[]
  writeEnv: NodeJS.ProcessEnv
}

/** Runs the CLI; codeCache: 'write' writes the code cache as the run exits, 'report' says on stderr whether V8 took it. */
function cli(form: CliForm, args: string[], codeCache: '' | 'write' | 'report'): string {
  const env = {...process.env, IMAGETRUST_CODE_CACHE: codeCache, ...(codeCache === 'write' ? form.writeEnv : {})}
  const [command, ...prefix] = form.command
  const result = spawnSync(command, [...prefix, ...args], {env, encoding: 'utf8'})
  // check exits 2 for drift; anything else but 0 means the bundle is broken.
  if (result.status !== 0 && result.status !== 2) throw new Error(`imagetrust ${args.join(' ')} exited ${result.status}: ${result.stderr}`)
  return result.stderr
}

/** A root with an empty /etc/containers and a trust file of an accept and a reject scope. */
function warmUpRoot(): {work: string; args: string[]} {
  const work = mkdtempSync(path.join(os.tmpdir(), 'imagetrust-build-'))
  mkdirSync(path.join(work, 'root/etc/containers'), {recursive: true})
  const trust = path.join(work, 'trust.yaml')
  writeFileSync(trust, 'version: 1\ndefault: reject\nscopes:\n  registry.example.com/team:\n    policy: accept\n  registry.example.com/other:\n    policy: reject\n')
  return {work, args: ['--root', path.join(work, 'root'), '-c', trust]}
}

/** Writes the form's code cache from a representative run. */
export function writeCodeCache(form: CliForm): void {
  const {work, args} = warmUpRoot()
  try {
    cli(form, ['apply', ...args], '')
    cli(form, ['check', ...args], 'write')
  } finally {
    rmSync(work, {recursive: true, force: true})
  }
}

/** Fails unless V8 takes the form's code cache (one made by another V8, or for other source, is refused). */
export function assertCodeCacheTaken(form: CliForm): void {
  const {work, args} = warmUpRoot()
  try {
    const report = cli(form, ['check', ...args], 'report')
    if (!report.includes('code cache accepted')) throw new Error(`V8 did not take the code cache just made: ${report}`)
  } finally {
    rmSync(work, {recursive: true, force: true})
  }
}

/**
 * The engine lab built from Go modules by scripts/lab-build.sh into .lab/bin:
 * CRI-O, pinns, pause, crictl, skopeo and one policy oracle per
 * containers/image version. A test that needs it and finds it missing fails
 * with the command that builds it: it is never skipped.
 */
import {access, constants} from 'node:fs/promises'
import path from 'node:path'

import {REPO_ROOT, mustRun} from './lab.ts'

export const LAB_BIN = path.join(REPO_ROOT, '.lab/bin')

/** The containers/image versions the lab has an oracle for, oldest first. */
export const ORACLE_VERSIONS = ['5.29', '5.34', '5.38', '5.40'] as const
export type OracleVersion = (typeof ORACLE_VERSIONS)[number]

/** The path of a lab binary; throws, naming the build command, when it is not built. */
export async function labBin(name: string): Promise<string> {
  const file = path.join(LAB_BIN, name)
  try {
    await access(file, constants.X_OK)
  } catch {
    throw new Error(`the engine lab has no ${name} (${file}): build it with 'bash scripts/lab-build.sh' (or 'npm test', which runs it)`)
  }

  return file
}

export const oracleBin = (version: OracleVersion) => labBin(`policy-oracle-${version}`)

/** The containers/image module and version a Go binary was really built with (`go version -m`). */
export async function builtWithContainersImage(binary: string): Promise<string | undefined> {
  const {stdout} = await mustRun('go', ['version', '-m', binary])
  const line = stdout.split('\n').find((l) => /^\s+dep\s+\S+\/image\/v5\s/.test(l))
  return line?.trim().split(/\s+/)[2]
}

export interface OracleAnswer {
  library: string
  version: string
  image?: string
  policyFiles: string[]
  registriesFiles: string[]
  opened: string[]
  policyError?: string
  registriesError?: string
  lookaside?: string
  allowed?: boolean
  reason?: string
  pulled?: boolean
  pullError?: string
}

export interface OracleOptions {
  policy?: string
  registriesD?: string
  root?: string
  pull?: string
  watch?: string[]
  env?: NodeJS.ProcessEnv
}

/** Asks one containers/image version what it does with an image (or only which files it loads). */
export async function askOracle(version: OracleVersion, image: string | undefined, options: OracleOptions = {}): Promise<OracleAnswer> {
  const args = [
    ...(options.policy ? ['--policy', options.policy] : []),
    ...(options.registriesD ? ['--registries-d', options.registriesD] : []),
    ...(options.root ? ['--root', options.root] : []),
    ...(options.pull ? ['--pull', options.pull] : []),
    ...(options.watch ?? []).flatMap((w) => ['--watch', w]),
    ...(image ? [image] : []),
  ]
  const {stdout} = await mustRun(await oracleBin(version), args, {env: options.env})
  return JSON.parse(stdout) as OracleAnswer
}

/** Loads each policy file in one oracle process: file → error, or undefined when it loads. */
export async function oracleLoads(version: OracleVersion, files: string[]): Promise<Map<string, string | undefined>> {
  const answers = new Map<string, string | undefined>()
  const bin = await oracleBin(version)
  for (let i = 0; i < files.length; i += 200) {
    const {stdout} = await mustRun(bin, ['--load', ...files.slice(i, i + 200)])
    for (const line of stdout.trim().split('\n')) {
      const answer = JSON.parse(line) as {file: string; loads: boolean; error?: string}
      answers.set(answer.file, answer.loads ? undefined : (answer.error ?? 'refused'))
    }
  }

  return answers
}

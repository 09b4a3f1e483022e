import {dockerScopeChain} from '../policy/match.js'
import type {DockerReference} from '../policy/reference.js'
import type {RegistriesFile} from './read.js'

/**
 * Which registries.d section gives each setting for a pull, as
 * containers/image resolves it: per key, the first section in the scope chain
 * that sets THIS key (falling through to parent sections), then
 * default-docker, then the built-in default.
 */
export interface SettingSource {
  value: string | boolean
  /** The file, or "built-in" for containers/image's own default. */
  file: string
  /** The docker: scope, "default-docker", or "built-in". */
  section: string
}

export interface LookasideResolution {
  lookaside: SettingSource
  lookasideStaging?: SettingSource
  sigstoreAttachments: SettingSource
}

type Section = Record<string, unknown>

function sectionOf(file: RegistriesFile, scope: string): Section | undefined {
  const value = file.doc.getIn(['docker', scope]) as unknown
  const plain = value && typeof value === 'object' && 'toJSON' in value ? (value as {toJSON(): unknown}).toJSON() : value
  return plain && typeof plain === 'object' ? (plain as Section) : undefined
}

function defaultDocker(file: RegistriesFile): Section | undefined {
  const value = file.doc.get('default-docker') as unknown
  const plain = value && typeof value === 'object' && 'toJSON' in value ? (value as {toJSON(): unknown}).toJSON() : value
  return plain && typeof plain === 'object' ? (plain as Section) : undefined
}

/** The first value of any of `keys` (newer name first) along the chain. */
function resolve(files: RegistriesFile[], chain: string[], keys: string[]): SettingSource | undefined {
  for (const scope of chain) {
    for (const file of files) {
      const section = file.scopes.has(scope) ? sectionOf(file, scope) : undefined
      for (const key of keys) {
        if (section?.[key] !== undefined && section[key] !== null) return {value: section[key] as string | boolean, file: file.displayPath, section: scope}
      }
    }
  }

  for (const file of files) {
    const section = defaultDocker(file)
    for (const key of keys) {
      if (section?.[key] !== undefined && section[key] !== null) return {value: section[key] as string | boolean, file: file.displayPath, section: 'default-docker'}
    }
  }

  return undefined
}

export function resolveLookaside(files: RegistriesFile[], ref: DockerReference, options: {rootless?: boolean; home?: string} = {}): LookasideResolution {
  const chain = dockerScopeChain(ref)
  const builtIn = options.rootless ? `file://${options.home ?? '~'}/.local/share/containers/sigstore` : 'file:///var/lib/containers/sigstore'
  return {
    lookaside: resolve(files, chain, ['lookaside', 'sigstore']) ?? {value: builtIn, file: 'built-in', section: 'built-in'},
    lookasideStaging: resolve(files, chain, ['lookaside-staging', 'sigstore-staging', 'lookaside', 'sigstore']),
    sigstoreAttachments: resolve(files, chain, ['use-sigstore-attachments']) ?? {value: false, file: 'built-in', section: 'built-in'},
  }
}

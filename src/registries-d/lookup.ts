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

const asSection = (value: unknown): Section | undefined => {
  const plain = value && typeof value === 'object' && 'toJSON' in value ? (value as {toJSON(): unknown}).toJSON() : value
  return plain && typeof plain === 'object' ? (plain as Section) : undefined
}

/** A member of the fast parser's value, by path (undefined where it is not a mapping); own keys only. */
function member(value: unknown, ...path: string[]): unknown {
  let at = value
  for (const key of path) {
    if (!at || typeof at !== 'object' || Array.isArray(at) || !Object.hasOwn(at, key)) return undefined
    at = (at as Record<string, unknown>)[key]
  }

  return at
}

/** From the fast parser's value when the file has one (no Document parsed), else from the Document. */
function sectionOf(file: RegistriesFile, scope: string): Section | undefined {
  return asSection('value' in file ? member(file.value, 'docker', scope) : file.doc.getIn(['docker', scope]))
}

function defaultDocker(file: RegistriesFile): Section | undefined {
  return asSection('value' in file ? member(file.value, 'default-docker') : file.doc.get('default-docker'))
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

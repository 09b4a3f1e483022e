import path from 'node:path'

import {dockerScopeNormalization, parseDockerScope} from './reference.js'
import type {PolicyFeatures} from './types.js'

/**
 * Scope validation per transport, as containers/image does it at load time.
 * An invalid scope for a path-based transport breaks every pull; a docker
 * scope is never validated by containers/image, so we only warn about it.
 */
export type ScopeCheck = {ok: true; warning?: string} | {ok: false; reason: string}

function checkPathScope(scope: string): ScopeCheck {
  if (!path.isAbsolute(scope)) return {ok: false, reason: 'the scope must be an absolute path'}
  if (scope === '/') return {ok: false, reason: 'the scope "/" is not allowed; use "" for the whole transport'}
  if (path.posix.normalize(scope) !== scope || scope.endsWith('/')) return {ok: false, reason: 'the scope must be a clean path (no trailing /, no . or ..)'}
  return {ok: true}
}

/** A digest go-digest parses (known algorithm, lowercase hex of its length): an image ID, not a name. */
const DAEMON_IMAGE_ID = /^(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/
/** A containers-storage image ID after "@": 64 lowercase hex digits, optionally "sha256:"-prefixed. */
const STORAGE_IMAGE_ID = /^(?:sha256:)?[0-9a-f]{64}$/

/**
 * `[driver@/graph/root+/run/root:options]name@id` as containers/image
 * checks it at load time: the store spec must close, a driver named before
 * the first @ must not be empty, the graph root after it must be absolute, and an @ after it must introduce a valid
 * image ID. The name itself is not checked.
 */
function checkStorageScope(scope: string): ScopeCheck {
  if (!scope.startsWith('[')) return {ok: false, reason: 'a containers-storage scope starts with [driver@/graph/root] or [/graph/root]'}
  const close = scope.indexOf(']')
  if (close === -1) return {ok: false, reason: 'the store specification has no closing ]'}
  const spec = scope.slice(1, close)
  const at = spec.indexOf('@')
  if (at === 0) return {ok: false, reason: 'the storage driver before @ is empty'}
  const root = at === -1 ? spec : spec.slice(at + 1)
  if (!root.startsWith('/')) return {ok: false, reason: `graph root "${root}" must be an absolute path`}
  const rest = scope.slice(close + 1)
  const idAt = rest.indexOf('@')
  if (idAt !== -1 && !STORAGE_IMAGE_ID.test(rest.slice(idAt + 1))) {
    return {ok: false, reason: `"${rest.slice(idAt + 1)}" after @ is not an image ID (64 lowercase hex digits, optionally sha256:)`}
  }

  return {ok: true}
}

/** The OpenShift transport's scope syntax: hostname[/namespace[/stream[:tag]]]. */
const ATOMIC_SCOPE = /^[^/]*(\/[^:/]*(\/[^:/]*(:[^:/]*)?)?)?$/

export function checkScope(transport: string, scope: string, features: Pick<PolicyFeatures, 'atomicScopes'> = {atomicScopes: true}): ScopeCheck {
  if (scope === '') return {ok: true}
  if (transport === 'atomic' && features.atomicScopes && !ATOMIC_SCOPE.test(scope)) return {ok: false, reason: `Invalid scope name ${scope}`}
  switch (transport) {
    case 'docker':
    case 'atomic': {
      const parsed = parseDockerScope(scope)
      if (typeof parsed === 'string') return {ok: true, warning: `${parsed}; containers/image loads it but it never matches`}
      const normalization = dockerScopeNormalization(scope)
      if (normalization?.kind === 'mismatch') return {ok: true, warning: `scope "${scope}" never matches: containers/image compares normalised names ("${normalization.normalized}")`}
      return {ok: true}
    }

    case 'docker-daemon': {
      if (DAEMON_IMAGE_ID.test(scope)) return {ok: false, reason: 'an image ID cannot be a scope; it only matches ""'}
      const parsed = parseDockerScope(scope)
      return typeof parsed === 'string' ? {ok: true, warning: parsed} : {ok: true}
    }

    case 'containers-storage': {
      return checkStorageScope(scope)
    }

    case 'dir':
    case 'oci':
    case 'oci-archive':
    case 'sif': {
      return checkPathScope(scope)
    }

    case 'docker-archive':
    case 'tarball': {
      return {ok: false, reason: `the ${transport} transport only accepts the "" scope`}
    }

    default: {
      return {ok: true}
    }
  }
}

import path from 'node:path'

import {parseDockerScope} from './reference.js'

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

const STORE_SPEC = /^\[(?:([^@\]]+)@)?([^\]]+)\](.*)$/

export function checkScope(transport: string, scope: string): ScopeCheck {
  if (scope === '') return {ok: true}
  switch (transport) {
    case 'docker':
    case 'atomic': {
      const parsed = parseDockerScope(scope)
      return typeof parsed === 'string' ? {ok: true, warning: `${parsed}; containers/image loads it but it never matches`} : {ok: true}
    }

    case 'docker-daemon': {
      if (/^[A-Za-z][A-Za-z0-9]*:[0-9a-fA-F]+$/.test(scope)) return {ok: false, reason: 'an image ID cannot be a scope; it only matches ""'}
      const parsed = parseDockerScope(scope)
      return typeof parsed === 'string' ? {ok: true, warning: parsed} : {ok: true}
    }

    case 'containers-storage': {
      const match = STORE_SPEC.exec(scope)
      if (!match) return {ok: false, reason: 'a containers-storage scope starts with [driver@/graph/root] or [/graph/root]'}
      if (!path.isAbsolute(match[2])) return {ok: false, reason: `graph root "${match[2]}" must be an absolute path`}
      return {ok: true}
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

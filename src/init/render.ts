import {isMap, isSeq, stringify, type Document} from 'yaml'

import {ImagetrustError} from '../lib/errors.js'
import {KEYS_SUBDIR} from '../keys/manage.js'
import type {DefaultChoice, InitAnswers, InitException, InitKey, InitScope} from './types.js'

/**
 * The trust file init writes, commented so that a reader learns each part.
 * Prompts and flags both end here, so they give the same bytes.
 */

export function keyFileOf(key: Pick<InitKey, 'name' | 'type'>): string {
  return `${KEYS_SUBDIR}/${key.name}.${key.type === 'gpg' ? 'asc' : 'pub'}`
}

/** Text for a comment: one line, control characters shown as \\n, \\t or \\xNN, never raw. */
export function commentText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replaceAll(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\x${c.codePointAt(0)!.toString(16).padStart(2, '0')}`))
}

function describeKey(key: InitKey): string {
  return commentText(key.keys.map((k) => `${k.userIds[0] ?? '(no user ID)'}, ${k.algorithm}, ${k.expires ? `expires ${k.expires.slice(0, 10)}` : 'no expiry'}`).join('; '))
}

/**
 * A value as one YAML scalar, quoted by the yaml library when it must be
 * (a ' #', a ': ', a leading '-', a newline...): never spliced in raw.
 */
export function q(value: string | boolean | string[], style: 'PLAIN' | 'QUOTE_DOUBLE' = 'PLAIN'): string {
  if (Array.isArray(value)) return `[${value.map((v) => q(v)).join(', ')}]`
  const text = stringify(value, {lineWidth: 0, blockQuote: false, defaultStringType: style, doubleQuotedMinMultiLineLength: Number.MAX_SAFE_INTEGER}).replace(/\n$/, '')
  if (text.includes('\n')) throw new ImagetrustError(`cannot write ${JSON.stringify(value)} on one line`)
  return text
}

function defaultBlock(choice: DefaultChoice): string[] {
  const lines = [
    '# What happens to an image from a registry that no scope below lists:',
    '#   reject: refused. Local transports (containers-storage, oci, dir, docker-archive)',
    '#           stay open, so podman load and locally built images keep working.',
    '#   accept: pulled without any signature check.',
  ]
  if (choice === 'unset') {
    lines.push("# Unset: policy.json's default is left as found (often insecureAcceptAnything, so", '# unlisted registries stay accepted). Uncomment to decide:', '# default: reject')
  } else {
    lines.push(`default: ${q(choice)}`)
  }

  return lines
}

function keyBlock(key: InitKey): string[] {
  const pin = key.fingerprints.length === 1 ? key.fingerprints[0] : key.fingerprints
  return [`  # ${describeKey(key)}`, `  ${q(key.name)}:`, `    type: ${q(key.type)}`, `    file: ${q(keyFileOf(key))}`, `    fingerprint: ${q(pin)}`]
}

function scopeBody(scope: InitScope, indent: string): string[] {
  const lines = [`${indent}policy: signed`, `${indent}keys: ${q([scope.key])}`]
  if (scope.lookaside) lines.push(`${indent}lookaside: ${q(scope.lookaside)}`)
  if (scope.sigstoreAttachments) lines.push(`${indent}sigstoreAttachments: true`)
  if (scope.test?.signed || scope.test?.unsigned) {
    lines.push(`${indent}test:`)
    if (scope.test.signed) lines.push(`${indent}  signed: ${q(scope.test.signed)}`)
    if (scope.test.unsigned) lines.push(`${indent}  unsigned: ${q(scope.test.unsigned)}`)
  }

  return lines
}

const EXCEPTION_COMMENT = [
  '# Exceptions: accepted unsigned until the date (00:00 UTC of that day, or the time given),',
  '# then apply leaves them out and the rest of the policy decides; check warns --expiry-warn days ahead.',
]

function exceptionBody(exception: InitException, indent: string): string[] {
  return [`${indent}policy: accept`, `${indent}until: ${q(exception.until)}`, ...(exception.reason ? [`${indent}reason: ${q(exception.reason, 'QUOTE_DOUBLE')}`] : [])]
}

export function renderTrustFile(answers: InitAnswers): string {
  const lines = [
    '# imagetrust trust file, written by `imagetrust init`.',
    '# It says which registries must serve signed images, and which keys may sign them.',
    '# After an edit: `imagetrust plan` shows the change, `imagetrust apply` makes it,',
    '# `imagetrust verify` proves it with test pulls, `imagetrust check` reports drift.',
    'version: 1',
    '',
    ...defaultBlock(answers.default ?? 'unset'),
    '',
    '# Trusted public keys. Each is pinned by fingerprint: if the file ever holds another',
    '# key, apply refuses it. The file is a checked copy, relative to this file.',
    '# Rotate a key: `imagetrust key add NEW FILE --scope SCOPE`, then `imagetrust key remove OLD --force`.',
    'keys:',
    ...answers.keys.flatMap((k) => keyBlock(k)),
    '',
    '# Scopes: a registry, a namespace or a repository (host[:port][/path]) and its rule.',
    '# The most specific scope wins; nothing is inherited from broader ones.',
    '#   keys: an image signed by any one of them is accepted.',
    '#   lookaside: where the signatures are fetched from; sigstoreAttachments: stored beside the image.',
    '#   test: images `imagetrust verify` pulls: signed must be accepted, unsigned refused.',
    'scopes:',
  ]
  for (const scope of answers.scopes) lines.push(`  ${q(scope.scope, 'QUOTE_DOUBLE')}:`, ...scopeBody(scope, '    '))
  const exceptions = answers.exceptions ?? []
  if (exceptions.length > 0) lines.push(...EXCEPTION_COMMENT.map((l) => `  ${l}`))
  for (const exception of exceptions) lines.push(`  ${q(exception.scope, 'QUOTE_DOUBLE')}:`, ...exceptionBody(exception, '    '))
  return `${lines.join('\n')}\n`
}

/**
 * An existing trust file, edited with the yaml Document API so its comments
 * stay: new keys and scopes are added; a key for a scope that exists is added
 * beside its current keys (the first step of a rotation).
 */
export function editTrustDocument(doc: Document, answers: InitAnswers): string[] {
  const notes: string[] = []
  if (answers.default && answers.default !== 'unset') doc.set('default', answers.default)
  const keysNode = doc.get('keys', true)
  if (!isMap(keysNode)) doc.set('keys', doc.createNode({}))
  const keys = doc.get('keys', true)
  if (isMap(keys) && keys.flow) keys.flow = false
  for (const key of answers.keys) {
    if (doc.hasIn(['keys', key.name])) continue
    const pin = key.fingerprints.length === 1 ? key.fingerprints[0] : key.fingerprints
    const node = doc.createNode({type: key.type, file: keyFileOf(key), fingerprint: pin})
    // A pair whose key is a node, so that it can carry the comment (one line: describeKey sanitises it).
    const pair = doc.createPair(key.name, node)
    ;(pair.key as {commentBefore?: string}).commentBefore = ` ${describeKey(key)}`
    ;(doc.get('keys', true) as {items: unknown[]}).items.push(pair)
  }

  if (!isMap(doc.get('scopes', true))) doc.set('scopes', doc.createNode({}))
  const scopes = doc.get('scopes', true)
  if (isMap(scopes) && scopes.flow) scopes.flow = false
  for (const scope of answers.scopes) {
    const existing = doc.getIn(['scopes', scope.scope], true)
    if (!isMap(existing)) {
      const value: Record<string, unknown> = {policy: 'signed', keys: [scope.key]}
      if (scope.lookaside) value.lookaside = scope.lookaside
      if (scope.sigstoreAttachments) value.sigstoreAttachments = true
      if (scope.test?.signed || scope.test?.unsigned) value.test = {...scope.test}
      const node = doc.createNode(value)
      const keysSeq = (node as {get: (k: string, keep: boolean) => {flow?: boolean}}).get('keys', true)
      keysSeq.flow = true
      doc.setIn(['scopes', scope.scope], node)
      notes.push(`added scope "${scope.scope}"`)
      continue
    }

    if (existing.get('policy') !== 'signed') throw new ImagetrustError(`scope "${scope.scope}" has policy: ${String(existing.get('policy'))}; only a signed scope takes keys`)
    const list = existing.get('keys', true)
    if (isSeq(list)) {
      if (!list.items.some((item) => String((item as {value?: unknown}).value ?? item) === scope.key)) {
        list.add(doc.createNode(scope.key))
        notes.push(`added key "${scope.key}" beside the current key(s) of "${scope.scope}"; remove the old one later with \`imagetrust key remove OLD --force --apply\``)
      }
    } else {
      existing.set('keys', doc.createNode([scope.key]))
    }

    if (scope.lookaside && !existing.has('lookaside')) existing.set('lookaside', scope.lookaside)
    if (scope.test?.signed && !existing.hasIn(['test', 'signed'])) existing.setIn(['test', 'signed'], scope.test.signed)
    if (scope.test?.unsigned && !existing.hasIn(['test', 'unsigned'])) existing.setIn(['test', 'unsigned'], scope.test.unsigned)
  }

  for (const exception of answers.exceptions ?? []) notes.push(editException(doc, exception))
  return notes
}

/** Adds an exception, or sets until (and reason) on the accept scope that is already there. */
function editException(doc: Document, exception: InitException): string {
  const existing = doc.getIn(['scopes', exception.scope], true)
  const fields = {until: exception.until, ...(exception.reason ? {reason: exception.reason} : {})}
  if (!isMap(existing)) {
    doc.setIn(['scopes', exception.scope], doc.createNode({policy: 'accept', ...fields}))
    return `added scope "${exception.scope}": accepted unsigned until ${exception.until}`
  }

  if (existing.get('policy') !== 'accept') throw new ImagetrustError(`scope "${exception.scope}" has policy: ${String(existing.get('policy'))}; only an accept scope can be an exception with until`)
  for (const [key, value] of Object.entries(fields)) existing.set(key, value)
  return `scope "${exception.scope}" is accepted unsigned until ${exception.until}`
}

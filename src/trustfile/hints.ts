import {assetPath} from '../lib/assets.js'
import type {TrustFile} from './types.js'

/**
 * First-run hints: where the example trust file is (found relative to the
 * installed package, not the working directory), and the warnings that
 * catch a trust file that quietly protects less than it seems to.
 */
export const TEMPLATE_PATH = assetPath('templates/trust.yaml')

export function missingTrustFileHint(file: string): string {
  return `Run \`imagetrust init\` to create ${file} step by step (or \`imagetrust init --yes --scope ... --key ... --lookaside ... --default reject\`), or pass --config FILE. An annotated example: ${TEMPLATE_PATH}`
}

/** A trust file without default: leaves policy.json's default, which is usually insecureAcceptAnything. */
export function defaultUnsetWarning(trust: Pick<TrustFile, 'default' | 'file'>): string | undefined {
  if (trust.default !== undefined) return undefined
  return `${trust.file} sets no default: registries that no scope lists stay as policy.json's default has them (usually accepted unsigned). Add \`default: reject\` to refuse them (local transports stay open), or \`default: accept\` to say so explicitly.`
}

/** Keys that no scope uses are installed and enforce nothing. */
export function unusedKeyWarnings(trust: Pick<TrustFile, 'keys' | 'scopes'>): string[] {
  const used = new Set(trust.scopes.flatMap((s) => s.keys))
  return trust.keys
    .filter((k) => !used.has(k.name))
    .map((k) => `key "${k.name}" is used by no scope, so it is installed and enforces nothing: list it under a scope's keys: in the trust file (next time, \`imagetrust key add NAME SOURCE --scope SCOPE\` does both at once)`)
}

import type {KeyInfo} from '../keys/types.js'
import type {KeyKind} from '../trustfile/types.js'

/** What init learns, from prompts or from flags: the same data either way, so the same trust file. */
export interface InitKey {
  name: string
  type: KeyKind
  /** The normalized public key, as it is kept in keys/ beside the trust file. */
  content: string
  fingerprints: string[]
  keys: KeyInfo[]
  /** Where it came from (a file, a URL, the GnuPG keyring, pasted armor): shown, never written. */
  origin: string
  warnings: string[]
}

export interface InitScope {
  scope: string
  key: string
  lookaside?: string
  sigstoreAttachments?: boolean
  test?: {signed?: string; unsigned?: string}
}

/** An accept scope that ends: images under it are pulled unsigned until `until`, then the rest of the policy decides. */
export interface InitException {
  scope: string
  /** As given (a date or an RFC 3339 time), checked by parseUntil. */
  until: string
  reason?: string
}

export type DefaultChoice = 'reject' | 'accept' | 'unset'

export interface InitAnswers {
  /** undefined: leave an existing trust file's default as it is. */
  default?: DefaultChoice
  keys: InitKey[]
  scopes: InitScope[]
  /** Accept scopes with an until (--accept, --until, --reason). */
  exceptions?: InitException[]
}

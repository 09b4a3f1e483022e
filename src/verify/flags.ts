import * as Flags from '@oclif/core/flags'

import {ImagetrustError} from '../lib/errors.js'
import type {VerifyCase} from './verify.js'

export const verifyFlags = {
  engine: Flags.string({options: ['auto', 'podman', 'skopeo', 'crictl'], default: 'auto', description: 'Engine to pull with; auto uses every one installed.'}),
  image: Flags.string({multiple: true, description: 'An image to test-pull (pair each with --expect).'}),
  expect: Flags.string({multiple: true, options: ['accept', 'reject'], description: 'What the host must do with the --image at the same position.'}),
  'tls-verify': Flags.boolean({default: true, allowNo: true, description: 'Require HTTPS with valid certificates for registries (--no-tls-verify for plain-HTTP test registries).'}),
}

export function casesFromFlags(images: string[] | undefined, expects: string[] | undefined): VerifyCase[] {
  const list = images ?? []
  if (list.length !== (expects ?? []).length) throw new ImagetrustError(`give one --expect per --image (${list.length} image(s), ${(expects ?? []).length} --expect)`)
  return list.map((image, i) => ({image, expect: expects![i] as 'accept' | 'reject'}))
}

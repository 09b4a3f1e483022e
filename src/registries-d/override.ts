import path from 'node:path'

import type {DesiredSection} from './merge.js'
import type {RegistriesFile} from './read.js'

/**
 * A vendor file (/usr/share/containers/registries.d, registries.rootful.d, or
 * for a user every system directory) that defines a scope of the trust file
 * is never edited and never given a second definition: a file of the same
 * name in the managed directory replaces it for containers/image 5.40, which
 * merges directories by file name. That override carries the vendor file's
 * other entries unchanged, so nothing the vendor configured is lost, and is
 * regenerated from the vendor file on every apply; removing it restores the
 * vendor's view.
 */

/** One override to write: where, the vendor file it replaces, and the trust file's sections it sets. */
export interface OverridePlacement {
  hostPath: string
  vendor: RegistriesFile
  sections: DesiredSection[]
}

/** The override that replaces `vendor`: same name, in `dir`. */
export function overridePath(dir: string, vendor: RegistriesFile): string {
  return path.posix.join(dir, vendor.name)
}

function header(vendor: RegistriesFile, sections: DesiredSection[]): string {
  return [
    ` Managed by imagetrust: a copy of ${vendor.hostPath}, which this file replaces`,
    ' (containers/image 5.40 reads a same-named file in a higher directory instead),',
    ` with the trust file's settings for ${sections.map((s) => s.scope).join(', ')}.`,
    ' `imagetrust apply` regenerates it from the vendor file and removes it when no longer needed.',
  ].join('\n')
}

function indentOf(text: string): number {
  const match = /^[^\s#][^\n]*:\s*\n( +)\S/m.exec(text)
  return match ? Math.min(match[1].length, 8) : 2
}

/** The override's content: the vendor file, comments kept, with the trust file's keys set in its sections. */
export async function overrideText(placement: OverridePlacement): Promise<string> {
  const {isMap} = await import('yaml')
  const {vendor, sections} = placement
  const doc = vendor.doc.clone()
  for (const section of sections) {
    // `scope:` with nothing under it is a null node, which setIn cannot descend into.
    if (!isMap(doc.getIn(['docker', section.scope], true))) doc.setIn(['docker', section.scope], doc.createNode({}))
    for (const [key, value] of Object.entries(section.values)) doc.setIn(['docker', section.scope, key], value)
  }

  doc.commentBefore = [header(vendor, sections), doc.commentBefore].filter(Boolean).join('\n')
  return doc.toString({indent: indentOf(vendor.text)})
}

import type {PolicyFeatures} from '../policy/types.js'

/**
 * What the installed containers/image understands. Podman, Skopeo, Buildah
 * and CRI-O print only their own version, so we map it to the vendored
 * containers/image release: each project's go.mod at its tags, and for the
 * lab's binaries (CRI-O 1.36.3, skopeo 1.23.0) what `go version -m` says they
 * were built with (test/e2e/lab-versions.test.ts).
 */
export interface Capabilities {
  /** The containers/image version assumed, e.g. "5.23". */
  containersImage: string
  /** Why: which tool and version it came from, or "assumed". */
  source: string
  policy: PolicyFeatures
  /** registries.d names: lookaside/lookaside-staging (5.22+) or sigstore/sigstore-staging. */
  lookasideKeys: 'lookaside' | 'sigstore'
  sigstoreAttachments: boolean
  /** GPG signatures by a signing subkey are accepted (5.37+). */
  subkeySignatures: boolean
  /**
   * An engine that reads GPG keys with golang.org/x/crypto/openpgp (built with
   * containers_image_openpgp), which cannot read EdDSA keys: it names that
   * engine. Such an engine refuses every image signed by an ed25519 key.
   */
  noEdDsaKeys?: string
}

type Version = [number, number]

/** Tool release → first containers/image minor it vendors, newest first. */
const TOOL_TO_CIMAGE: Record<string, Array<[Version, Version]>> = {
  podman: [
    [[6, 0], [5, 40]],
    [[5, 8], [5, 39]],
    [[5, 7], [5, 38]],
    [[5, 6], [5, 36]],
    [[5, 5], [5, 35]],
    [[5, 4], [5, 34]],
    [[5, 3], [5, 33]],
    [[5, 2], [5, 32]],
    [[5, 1], [5, 31]],
    [[5, 0], [5, 30]],
    [[4, 9], [5, 29]],
    [[4, 5], [5, 25]],
    [[4, 4], [5, 24]],
    [[4, 3], [5, 23]],
    [[4, 2], [5, 22]],
    [[3, 0], [5, 10]],
    [[2, 2], [5, 7]],
    [[2, 1], [5, 6]],
    [[2, 0], [5, 5]],
  ],
  skopeo: [
    [[1, 23], [5, 40]],
    [[1, 22], [5, 39]],
    [[1, 21], [5, 37]],
    [[1, 20], [5, 36]],
    [[1, 19], [5, 35]],
    [[1, 18], [5, 34]],
    [[1, 17], [5, 33]],
    [[1, 12], [5, 25]],
    [[1, 11], [5, 24]],
    [[1, 9], [5, 22]],
    [[1, 2], [5, 7]],
  ],
  buildah: [
    [[1, 44], [5, 40]],
    [[1, 43], [5, 39]],
    [[1, 42], [5, 38]],
    [[1, 41], [5, 36]],
    [[1, 40], [5, 35]],
    [[1, 39], [5, 34]],
    [[1, 38], [5, 33]],
    [[1, 27], [5, 22]],
  ],
  crio: [
    [[1, 35], [5, 38]],
    [[1, 34], [5, 35]],
    [[1, 33], [5, 35]],
    [[1, 32], [5, 33]],
    [[1, 31], [5, 32]],
    [[1, 29], [5, 29]],
    [[1, 28], [5, 27]],
    [[1, 27], [5, 25]],
    [[1, 26], [5, 23]],
    [[1, 25], [5, 22]],
    [[1, 21], [5, 10]],
  ],
}

export function parseVersion(text: string): Version | undefined {
  const match = /(\d+)\.(\d+)(?:\.\d+)?/.exec(text)
  return match ? [Number(match[1]), Number(match[2])] : undefined
}

function atLeast(v: Version, min: Version): boolean {
  return v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1])
}

export function containersImageFor(tool: string, version: Version): Version | undefined {
  const table = TOOL_TO_CIMAGE[tool]
  if (!table) return undefined
  for (const [toolVersion, cimage] of table) if (atLeast(version, toolVersion)) return cimage
  return [5, 0]
}

export function capabilitiesFor(cimage: Version, source: string): Capabilities {
  const has = (minor: number) => atLeast(cimage, [5, minor])
  return {
    containersImage: `${cimage[0]}.${cimage[1]}`,
    source,
    policy: {
      remapIdentity: has(9),
      signedByKeyPaths: has(22),
      sigstoreSigned: has(22),
      sigstoreFulcioRekor: has(24),
      sigstoreKeyLists: has(33),
      sigstorePki: has(35),
      atomicScopes: has(24),
    },
    lookasideKeys: has(22) ? 'lookaside' : 'sigstore',
    sigstoreAttachments: has(22),
    subkeySignatures: has(37),
  }
}

/** With no engine found we assume Debian 12's containers/image, the oldest we test against. */
export const ASSUMED_CAPABILITIES = capabilitiesFor([5, 23], 'assumed (no container engine found)')

/** The capabilities every detected engine shares: the oldest one decides. */
export function commonCapabilities(found: Array<{tool: string; version: string; goOpenPgp?: boolean}>): Capabilities {
  let oldest: {cimage: Version; source: string} | undefined
  for (const {tool, version} of found) {
    const parsed = parseVersion(version)
    const cimage = parsed && containersImageFor(tool, parsed)
    if (!cimage) continue
    if (!oldest || !atLeast(cimage, oldest.cimage)) oldest = {cimage, source: `${tool} ${version}`}
  }

  const capabilities = oldest ? capabilitiesFor(oldest.cimage, oldest.source) : ASSUMED_CAPABILITIES
  const goOpenPgp = found.find((e) => e.goOpenPgp)
  return goOpenPgp ? {...capabilities, noEdDsaKeys: `${goOpenPgp.tool} ${goOpenPgp.version}`} : capabilities
}

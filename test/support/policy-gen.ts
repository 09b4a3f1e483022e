/**
 * Seeded generator of policy.json variants for the parity test: valid files
 * of every requirement, identity and transport, then mutated field by field
 * (null, "", arrays, numbers, objects, missing, unknown, duplicate and
 * case-variant keys) and byte by byte (BOM, trailing data, non-UTF-8,
 * nesting). The same seed always gives the same cases.
 */

/** mulberry32: small, fast, and reproducible across Node versions. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d_2b_79_f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** A JSON tree that can hold what plain objects cannot: duplicate keys, raw text. */
export type J = {obj: Array<[string, J]>} | {arr: J[]} | {raw: string}

export const raw = (text: string): J => ({raw: text})
export const str = (s: string): J => raw(JSON.stringify(s))
export const nul: J = raw('null')
export const obj = (...entries: Array<[string, J]>): J => ({obj: entries})
export const arr = (...items: J[]): J => ({arr: items})

/** Keys are written as given, so `"\u0074ype"` can stand for "type". */
export function render(node: J, indent = 0, level = 0): string {
  const nl = indent ? '\n' + ' '.repeat(indent * (level + 1)) : ''
  const end = indent ? '\n' + ' '.repeat(indent * level) : ''
  if ('raw' in node) return node.raw
  if ('arr' in node) return node.arr.length === 0 ? '[]' : '[' + node.arr.map((item) => nl + render(item, indent, level + 1)).join(',') + end + ']'
  if (node.obj.length === 0) return '{}'
  const sep = indent ? ': ' : ':'
  return '{' + node.obj.map(([key, value]) => nl + (key.startsWith('"') ? key : JSON.stringify(key)) + sep + render(value, indent, level + 1)).join(',') + end + '}'
}

export interface GenCase {
  name: string
  bytes: Buffer
}

export interface GenPaths {
  /** A real GPG public key file. */
  gpgKey: string
  /** A second key file (keyPaths with two entries). */
  gpgKey2: string
  /** The key's bytes in base64, for keyData. */
  keyData: string
}

const HEX64 = '0123456789abcdef'.repeat(4)

export class PolicyGenerator {
  private readonly rand: () => number

  constructor(
    seed: number,
    private readonly paths: GenPaths,
  ) {
    this.rand = prng(seed)
  }

  private int(n: number): number {
    return Math.floor(this.rand() * n)
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  private chance(p: number): boolean {
    return this.rand() < p
  }

  // ---- value pools -------------------------------------------------------

  private junk(): [string, J] {
    return this.pick<[string, J]>([
      ['null', nul],
      ['empty', str('')],
      ['number', raw('5')],
      ['float', raw('1.5e3')],
      ['true', raw('true')],
      ['object', obj()],
      ['empty-array', arr()],
      ['array-null', arr(nul)],
      ['string-array', arr(str(this.paths.gpgKey))],
      ['nested-array', arr(arr(str('x')))],
    ])
  }

  private keyPathValue(): [string, J] {
    return this.pick<[string, J]>([
      ['key', str(this.paths.gpgKey)],
      ['key', str(this.paths.gpgKey)],
      ['missing-file', str('/nonexistent/key.gpg')],
      ['relative', str('keys/key.gpg')],
      ['empty', str('')],
      ['null', nul],
      ['escaped', raw(JSON.stringify(this.paths.gpgKey).replace('/', '\\/'))],
      this.junk(),
    ])
  }

  private keyPathsValue(): [string, J] {
    const k = str(this.paths.gpgKey)
    const k2 = str(this.paths.gpgKey2)
    return this.pick<[string, J]>([
      ['one', arr(k)],
      ['two', arr(k, k2)],
      ['empty', arr()],
      ['null-item', arr(nul)],
      ['key-and-null', arr(k, nul)],
      ['empty-item', arr(str(''))],
      ['null', nul],
      ['string', k],
      ['number-item', arr(raw('5'))],
      ['object', obj()],
      ['nested', arr(arr(k))],
      ['duplicate-items', arr(k, k)],
    ])
  }

  private keyDataValue(): [string, J] {
    return this.pick<[string, J]>([
      ['base64', str(this.paths.keyData)],
      ['base64', str(this.paths.keyData)],
      ['short', str('YQ==')],
      ['newline', str('YWJj\nZA==')],
      ['crlf', str('YWJj\r\nZA==')],
      ['cr', str('YWJj\rZA==')],
      ['space', str('YWJj ZA==')],
      ['unpadded', str('YWJjZA')],
      ['bad', str('abc')],
      ['urlsafe', str('-_-_')],
      ['double-padding', str('YQ==YQ==')],
      ['empty', str('')],
      ['null', nul],
      ['bytes', arr(raw('104'), raw('105'))],
      ['bytes-empty', arr()],
      ['bytes-null', arr(nul)],
      ['bytes-255', arr(raw('0'), raw('255'))],
      ['bytes-256', arr(raw('256'))],
      ['bytes-negative', arr(raw('-1'))],
      ['bytes-float', arr(raw('1.5'))],
      ['bytes-exp', arr(raw('1e2'))],
      ['bytes-string', arr(str('a'))],
      ['bytes-bool', arr(raw('true'))],
      ['number', raw('5')],
      ['object', obj()],
    ])
  }

  private keyTypeValue(): [string, J | undefined] {
    return this.pick<[string, J | undefined]>([
      ['GPGKeys', str('GPGKeys')],
      ['GPGKeys', str('GPGKeys')],
      ['signedByGPGKeys', str('signedByGPGKeys')],
      ['X509Certificates', str('X509Certificates')],
      ['signedByX509CAs', str('signedByX509CAs')],
      ['lowercase', str('gpgkeys')],
      ['empty', str('')],
      ['null', nul],
      ['number', raw('1')],
      ['missing', undefined],
    ])
  }

  private reference(): string {
    return this.pick([
      'docker.io/library/busybox:latest',
      'busybox:latest',
      'busybox',
      'a.example.com/ns/img:1',
      'a.example.com/ns/img',
      'docker://a.example.com/img:1',
      'docker://busybox:latest',
      'atomic:a.example.com/img:1',
      'A.example.com/img:1',
      'a.example.com/Img:1',
      `a.example.com/img@sha256:${HEX64}`,
      `a.example.com/img@sha256:${HEX64.slice(0, 32)}`,
      `a.example.com/img@sha512:${HEX64}${HEX64}`,
      `a.example.com/img@sha384:${HEX64}${HEX64.slice(0, 32)}`,
      `a.example.com/img@md5:${HEX64.slice(0, 32)}`,
      `a.example.com/img@sha256:${HEX64.toUpperCase()}`,
      `a.example.com/img:t@sha256:${HEX64}`,
      'a.example.com:5000/img:t',
      'localhost/img:t',
      'localhost:5000/img',
      '',
      HEX64,
      `${HEX64}:t`,
      `a.example.com/${HEX64}:t`,
      'a.example.com/img:-bad',
      'a.example.com//img:t',
      'a.example.com/img:t ',
      'index.docker.io/library/x:t',
      `a.example.com/${'x'.repeat(250)}:t`,
      'a.example.com/a__b/c-d.e:t',
      'a.example.com/a___b:t',
      '[::1]:5000/img:t',
      'a_b.example.com/img:t',
    ])
  }

  private prefix(): string {
    return this.pick([
      'a',
      'a/b',
      'a.example.com',
      'a.example.com/ns',
      'a.example.com:5000',
      'a.example.com:5000/ns/x',
      'A.example.com',
      'A.example.com/ns',
      'a.example.com/Ns',
      'a.example.com/',
      '/ns',
      '',
      'docker://a.example.com',
      '*.example.com',
      'a.example.com:t',
      'a.example.com/c:t',
      `a.example.com/c@sha256:${HEX64}`,
      'a_b',
      'a__b/c',
      '-a',
      'a..b',
      '[::1]:5000/x',
      'localhost',
      'a b',
      'a.example.com/ns/',
      'a-.example.com',
      'a.example.com:/x',
    ])
  }

  private identity(): [string, J] {
    const type = this.pick(['matchExact', 'matchRepoDigestOrExact', 'matchRepository', 'exactReference', 'exactRepository', 'remapIdentity', 'odd'])
    switch (type) {
      case 'exactReference': {
        const ref = this.reference()
        return [`exactReference(${ref})`, obj(['type', str(type)], ['dockerReference', str(ref)])]
      }

      case 'exactRepository': {
        const ref = this.reference()
        return [`exactRepository(${ref})`, obj(['type', str(type)], ['dockerRepository', str(ref)])]
      }

      case 'remapIdentity': {
        const [prefix, signed] = this.chance(0.5) ? [this.prefix(), 'b.example.com/ns'] : ['a.example.com/ns', this.prefix()]
        return [`remapIdentity(${prefix}->${signed})`, obj(['type', str(type)], ['prefix', str(prefix)], ['signedPrefix', str(signed)])]
      }

      case 'odd': {
        return this.pick<[string, J]>([
          ['identity-null', nul],
          ['identity-empty', obj()],
          ['identity-unknown', obj(['type', str('matchAnything')])],
          ['identity-case', obj(['type', str('MatchExact')])],
          ['identity-extra', obj(['type', str('matchExact')], ['dockerReference', str('a.example.com/x:1')])],
          ['identity-no-ref', obj(['type', str('exactReference')])],
          ['identity-null-ref', obj(['type', str('exactReference')], ['dockerReference', nul])],
          ['identity-null-prefix', obj(['type', str('remapIdentity')], ['prefix', nul], ['signedPrefix', str('a.example.com')])],
          ['identity-number-type', obj(['type', raw('1')])],
          ['identity-null-type', obj(['type', nul])],
          ['identity-string', str('matchExact')],
          ['identity-array', arr(obj(['type', str('matchExact')]))],
        ])
      }

      default: {
        return [type, obj(['type', str(type)])]
      }
    }
  }

  // ---- requirements -------------------------------------------------------

  private signedBy(mutate: boolean): [string, J] {
    const entries: Array<[string, J]> = [['type', str('signedBy')]]
    const names: string[] = ['signedBy']
    const [keyTypeName, keyType] = mutate && this.chance(0.3) ? this.keyTypeValue() : ['GPGKeys', str('GPGKeys')]
    if (keyType) entries.push(['keyType', keyType])
    if (keyTypeName !== 'GPGKeys') names.push(`keyType=${keyTypeName}`)
    const sources = mutate ? this.pick([['keyPath'], ['keyPaths'], ['keyData'], [], ['keyPath', 'keyData'], ['keyPath', 'keyPaths'], ['keyPaths', 'keyData'], ['keyPath', 'keyPaths', 'keyData']]) : [this.pick(['keyPath', 'keyPaths', 'keyData'])]
    for (const source of sources) {
      const [valueName, value] = !mutate
        ? source === 'keyPath'
          ? ['key', str(this.paths.gpgKey)]
          : source === 'keyPaths'
            ? ['one', arr(str(this.paths.gpgKey))]
            : ['base64', str(this.paths.keyData)]
        : source === 'keyPath'
          ? this.keyPathValue()
          : source === 'keyPaths'
            ? this.keyPathsValue()
            : this.keyDataValue()
      entries.push([source, value])
      names.push(`${source}=${valueName}`)
    }

    if (this.chance(0.5)) {
      const [name, identity] = mutate && this.chance(0.5) ? this.identity() : this.pick<[string, J]>([['matchRepository', obj(['type', str('matchRepository')])], ['matchExact', obj(['type', str('matchExact')])]])
      entries.push(['signedIdentity', identity])
      names.push(`id=${name}`)
    }

    return [names.join(','), obj(...entries)]
  }

  private sigstoreSigned(mutate: boolean): [string, J] {
    const entries: Array<[string, J]> = [['type', str('sigstoreSigned')]]
    const names: string[] = ['sigstoreSigned']
    const sources = mutate
      ? this.pick([
          ['keyPath'], ['keyData'], [], ['keyPath', 'keyData'], ['keyPaths'], ['keyDatas'], ['fulcio', 'rekorPublicKeyPath'], ['keyPath', 'rekorPublicKeyPath'], ['pki'], ['keyPath', 'rekorPublicKeyData'],
          // The plural Rekor keys (5.33), pki with intermediates or a hostname (5.35), and pairs the engines refuse.
          ['fulcio', 'rekorPublicKeyPaths'], ['keyPaths', 'rekorPublicKeyDatas'], ['keyPath', 'rekorPublicKeyPath', 'rekorPublicKeyPaths'], ['pki', 'rekorPublicKeyPath'], ['pki', 'keyPath'], ['pki-full'], ['pki-empty'],
        ])
      : [this.pick(['keyPath', 'keyData'])]
    for (const source of sources) {
      let value: [string, J]
      switch (source) {
        case 'keyPath': {
          value = mutate ? this.keyPathValue() : ['key', str(this.paths.gpgKey)]
          break
        }

        case 'keyData': {
          value = mutate ? this.keyDataValue() : ['base64', str(this.paths.keyData)]
          break
        }

        case 'keyPaths': {
          value = this.keyPathsValue()
          break
        }

        case 'keyDatas': {
          value = this.pick<[string, J]>([['one', arr(str('YQ=='))], ['empty', arr()], ['null-item', arr(nul)]])
          break
        }

        case 'fulcio': {
          value = ['ca', obj(['caPath', str(this.paths.gpgKey)], ['oidcIssuer', str('https://issuer.example.com')], ['subjectEmail', str('a@example.com')])]
          break
        }

        case 'pki': {
          value = ['roots', obj(['caRootsPath', str(this.paths.gpgKey)], ['subjectEmail', str('a@example.com')])]
          break
        }

        case 'pki-full': {
          const pki = this.pick<[string, J]>([
            ['roots+intermediates+hostname', obj(['caRootsPath', str(this.paths.gpgKey)], ['caIntermediatesPath', str(this.paths.gpgKey2)], ['subjectHostname', str('signer.example.com')])],
            ['rootsData+both-subjects', obj(['caRootsData', str('YQ==')], ['subjectEmail', str('a@example.com')], ['subjectHostname', str('signer.example.com')])],
            ['roots-path-and-data', obj(['caRootsPath', str(this.paths.gpgKey)], ['caRootsData', str('YQ==')], ['subjectEmail', str('a@example.com')])],
            ['no-subject', obj(['caRootsPath', str(this.paths.gpgKey)])],
            ['unknown-key', obj(['caRootsPath', str(this.paths.gpgKey)], ['subjectEmail', str('a@example.com')], ['subjectURI', str('x')])],
          ])
          entries.push(['pki', pki[1]])
          names.push(`pki=${pki[0]}`)
          continue
        }

        case 'pki-empty': {
          entries.push(['pki', this.pick([obj(), nul])])
          names.push('pki=empty')
          continue
        }

        case 'rekorPublicKeyPaths':
        case 'rekorPublicKeyDatas': {
          const item = source.endsWith('Datas') ? str('YQ==') : str(this.paths.gpgKey)
          value = this.pick<[string, J]>([['one', arr(item)], ['empty', arr()], ['null-item', arr(item, nul)]])
          break
        }

        default: {
          value = ['key', source.endsWith('Data') ? str('YQ==') : str(this.paths.gpgKey)]
        }
      }

      entries.push([source, value[1]])
      names.push(`${source}=${value[0]}`)
    }

    if (this.chance(0.6)) {
      const [name, identity] = mutate && this.chance(0.5) ? this.identity() : ['matchRepository', obj(['type', str('matchRepository')])]
      entries.push(['signedIdentity', identity])
      names.push(`id=${name}`)
    }

    return [names.join(','), obj(...entries)]
  }

  private requirement(mutate: boolean): [string, J] {
    const type = this.pick(['insecureAcceptAnything', 'reject', 'signedBy', 'signedBy', 'signedBy', 'sigstoreSigned', 'sigstoreSigned', 'signedBaseLayer'])
    switch (type) {
      case 'signedBy': {
        return this.signedBy(mutate)
      }

      case 'sigstoreSigned': {
        return this.sigstoreSigned(mutate)
      }

      case 'signedBaseLayer': {
        if (mutate && this.chance(0.5)) {
          if (this.chance(0.3)) return ['signedBaseLayer-no-identity', obj(['type', str(type)])]
          const [name, identity] = this.identity()
          return [`signedBaseLayer(${name})`, obj(['type', str(type)], ['baseLayerIdentity', identity])]
        }

        return ['signedBaseLayer', obj(['type', str(type)], ['baseLayerIdentity', obj(['type', str('matchRepository')])])]
      }

      default: {
        if (mutate && this.chance(0.3)) {
          return this.pick<[string, J]>([
            [`${type}+reason`, obj(['type', str(type)], ['reason', str('x')])],
            [`${type}-case`, obj(['type', str(type[0].toUpperCase() + type.slice(1))])],
            ['type-null', obj(['type', nul])],
            ['type-missing', obj()],
            ['type-number', obj(['type', raw('0')])],
            ['requirement-null', nul],
            ['requirement-string', str(type)],
            ['requirement-array', arr(obj(['type', str(type)]))],
          ])
        }

        return [type, obj(['type', str(type)])]
      }
    }
  }

  // ---- scopes -------------------------------------------------------------

  private static readonly TRANSPORTS = [
    'docker',
    'atomic',
    'containers-storage',
    'dir',
    'oci',
    'oci-archive',
    'docker-archive',
    'docker-daemon',
    'tarball',
    'sif',
    'ostree',
    'unknown',
  ] as const

  private scope(transport: string): string {
    const paths = ['', '/tmp/a', '/a:tag', '/', '/a/', 'relative', '/a/../b', '//a', '/a/./b', '/a//b', '/a:t/', '/:t', 'rel:/abs', '/a b', '/a\\b']
    const names = ['', 'a.example.com', 'a.example.com/ns', 'a.example.com/ns/img:1', `a.example.com/img@sha256:${HEX64}`, '*.example.com', 'busybox', 'docker://a.example.com', 'A.example.com/X', 'garbage!!', '*', '*.', 'a.example.com:5000/x']
    const daemon = [`sha256:${HEX64}`, HEX64, 'sha256:abc', `sha512:${HEX64}`, `sha512:${HEX64}${HEX64}`, `sha384:${HEX64}${HEX64.slice(0, 32)}`, `sha256:${HEX64.toUpperCase()}`, `SHA256:${HEX64}`, `sha256:${HEX64}0`, 'x!']
    const store = [
      '[overlay@/var/lib/x]',
      '[/var/lib/x]',
      '[overlay@/var/lib/x+/run/x]',
      '[overlay@/var/lib/x+/run/x:opt=1]',
      '[overlay@/var/lib/x]a.example.com/img:t',
      '[overlay@/var/lib/x]busybox',
      `[overlay@/var/lib/x]@${HEX64}`,
      `[overlay@/var/lib/x]@sha256:${HEX64}`,
      `[overlay@/var/lib/x]@sha512:${HEX64}`,
      '[overlay@/var/lib/x]@abc',
      `[overlay@/var/lib/x]@${HEX64.toUpperCase()}`,
      `[overlay@/var/lib/x]@${HEX64}0`,
      '[overlay@/var/lib/x]@',
      `[overlay@/var/lib/x]a.example.com/img@${HEX64}`,
      `[overlay@/var/lib/x]a.example.com/img:t@sha256:${HEX64}`,
      '[overlay@/var/lib/x]a.example.com/img@abc',
      `[overlay@/var/lib/x]a@${HEX64}@x`,
      `[overlay@/var/lib/x]x!@${HEX64}`,
      '[overlay@/var/lib/x]A',
      '[overlay@/var/lib/x]]',
      '[overlay@rel]',
      '[overlay@/x',
      '[@/x]',
      '[overlay@]',
      '[]',
      '[x]',
      '[a@b@/x]',
      '[/x@/y]',
      `${HEX64}`,
      `sha256:${HEX64}`,
      'a.example.com/img',
    ]
    switch (transport) {
      case 'docker':
      case 'atomic': {
        return this.pick(names)
      }

      case 'docker-daemon': {
        return this.pick([...daemon, ...names])
      }

      case 'containers-storage': {
        return this.pick(['', ...store])
      }

      default: {
        return this.pick(this.chance(0.8) ? paths : [...names, ...store])
      }
    }
  }

  // ---- cases --------------------------------------------------------------

  private policy(defaults: J[], transports?: J): J {
    const entries: Array<[string, J]> = [['default', arr(...defaults)]]
    if (transports) entries.push(['transports', transports])
    return obj(...entries)
  }

  /** A random structural change somewhere in a tree: unknown, duplicate and case-variant keys, nesting. */
  private mutateTree(node: J): [string, J] {
    const objects: Array<Extract<J, {obj: unknown}>> = []
    const walk = (n: J) => {
      if ('obj' in n) {
        objects.push(n)
        for (const [, v] of n.obj) walk(v)
      } else if ('arr' in n) {
        for (const v of n.arr) walk(v)
      }
    }

    walk(node)
    const target = this.pick(objects)
    if (target.obj.length === 0) {
      target.obj.push(['comment', str('x')])
      return ['unknown-key-in-empty', node]
    }

    const index = this.int(target.obj.length)
    const [key, value] = target.obj[index]
    switch (this.pick(['unknown', 'case', 'duplicate', 'duplicate-escaped', 'delete', 'nest', 'junk'])) {
      case 'unknown': {
        target.obj.splice(index + 1, 0, [this.pick(['comment', 'keyID', 'description', '']), str('x')])
        return [`unknown-key-after-${key}`, node]
      }

      case 'case': {
        target.obj[index] = [key.toUpperCase() === key ? key.toLowerCase() : key[0].toUpperCase() + key.slice(1), value]
        return [`case-variant-${key}`, node]
      }

      case 'duplicate': {
        target.obj.push([key, value])
        return [`duplicate-${key}`, node]
      }

      case 'duplicate-escaped': {
        const escaped = key === '' ? '""' : `"\\u${key.charCodeAt(0).toString(16).padStart(4, '0')}${JSON.stringify(key).slice(2)}`
        target.obj.push([escaped, value])
        return [`duplicate-escaped-${key}`, node]
      }

      case 'delete': {
        target.obj.splice(index, 1)
        return [`delete-${key}`, node]
      }

      case 'nest': {
        target.obj[index] = [key, arr(value)]
        return [`nest-${key}`, node]
      }

      default: {
        const [name, junk] = this.junk()
        target.obj[index] = [key, junk]
        return [`${key}=${name}`, node]
      }
    }
  }

  /** Byte-level oddities on an otherwise valid file. */
  private mutateText(text: string): [string, Buffer] {
    const b = (s: string) => Buffer.from(s, 'utf8')
    const insertAt = (s: string) => this.int(s.length + 1)
    switch (this.pick(['bom', 'trailing', 'trailing-ws', 'comment', 'trailing-comma', 'truncate', 'nonutf8-string', 'nonutf8-keys', 'nonutf8-outside', 'odd-ws', 'crlf', 'deep', 'single-quote', 'nul-byte', 'empty', 'escape-key', 'surrogates', 'huge-number'])) {
      case 'bom': {
        return ['bom', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b(text)])]
      }

      case 'trailing': {
        return ['trailing-garbage', b(text + this.pick(['x', '{}', '[]', '0', 'null', '}', ',']))]
      }

      case 'trailing-ws': {
        return ['trailing-whitespace', b(text + this.pick(['\n', ' \t\r\n', '\n\n']))]
      }

      case 'comment': {
        return ['comment', b(text.replace('{', this.pick(['{// c\n', '{/* c */', '{# c\n'])))]
      }

      case 'trailing-comma': {
        return ['trailing-comma', b(text.replace(/]}$/, '],}').replace(/}]/, '},]'))]
      }

      case 'truncate': {
        return ['truncated', b(text.slice(0, Math.max(1, text.length - 1 - this.int(5))))]
      }

      case 'nonutf8-string': {
        // Inside a docker scope name: Go reads it as U+FFFD and loads the file.
        const i = text.indexOf('"a.example.com"') + 1
        return ['non-utf8-in-string', Buffer.concat([b(text.slice(0, i)), Buffer.from([this.pick([0xff, 0xc3, 0x80])]), b(text.slice(i))])]
      }

      case 'nonutf8-keys': {
        // Two scope keys that differ only in how many bytes of a broken sequence they hold.
        const [one, two] = this.pick([[[0xe2, 0x82], [0xe2]], [[0xf0, 0x9f, 0x98], [0xf0, 0x9f]], [[0xc3], [0xc3, 0xc3]], [[0xff], [0xfe]], [[0xed, 0xa0, 0x80], [0xef, 0xbf, 0xbd]]])
        const i = text.indexOf('"a.example.com"')
        const scope = (bytes: number[]) => Buffer.concat([b('"a'), Buffer.from(bytes), b('":[{"type":"reject"}],')])
        return [`non-utf8-keys-${one.length}-${two.length}`, Buffer.concat([b(text.slice(0, i)), scope(one), scope(two), b(text.slice(i))])]
      }

      case 'nonutf8-outside': {
        const i = text.indexOf(':') + 1
        return ['non-utf8-outside-string', Buffer.concat([b(text.slice(0, i)), Buffer.from([0xa0]), b(text.slice(i))])]
      }

      case 'odd-ws': {
        const ws = this.pick(['\f', '\u00a0', '\v', '\u2028'])
        const i = text.indexOf(',') + 1 || 1
        return [`whitespace-U+${ws.charCodeAt(0).toString(16)}`, b(text.slice(0, i) + ws + text.slice(i))]
      }

      case 'crlf': {
        return ['crlf', b(text.replaceAll('\n', '\r\n'))]
      }

      case 'deep': {
        const depth = this.pick([10, 63, 100, 3000])
        // A nested value where a requirement list is expected: always an error, but it must not crash us.
        return [`deep-${depth}`, b(text.replace('"default":', `"default":${'['.repeat(depth)}${']'.repeat(depth)},"x":`))]
      }

      case 'single-quote': {
        return ['single-quotes', b(text.replaceAll('"type"', "'type'"))]
      }

      case 'nul-byte': {
        const i = insertAt(text)
        return ['nul-byte', b(text.slice(0, i) + '\u0000' + text.slice(i))]
      }

      case 'empty': {
        return ['empty-file', b(this.pick(['', ' ', '\n', 'null', '[]', '{}', '"x"', '0']))]
      }

      case 'escape-key': {
        return ['escaped-keys', b(text.replaceAll('"type"', '"\\u0074ype"').replace('"default"', '"d\\u0065fault"'))]
      }

      case 'surrogates': {
        const s = this.pick(['\\ud83d\\ude00', '\\ud800', '\\udc00', '\\ud800\\u0041', '\\uDFFF'])
        return ['surrogates', b(text.replace('"default"', `"default", "${s}": 1, "${s}"`))]
      }

      default: {
        return ['huge-number', b(text.replace('"default"', '"x": 1e400, "default"'))]
      }
    }
  }

  /** One case; `i` rotates the category so every run covers all of them. */
  next(i: number): GenCase {
    const category = ['requirement', 'identity', 'scope', 'keyfield', 'json', 'structure', 'mutate'][i % 7]
    const accept = obj(['type', str('insecureAcceptAnything')])
    let name: string
    let tree: J
    switch (category) {
      case 'requirement': {
        const reqs = Array.from({length: 1 + this.int(2)}, () => this.requirement(this.chance(0.5)))
        name = reqs.map(([n]) => n).join('+')
        tree = this.policy(reqs.map(([, r]) => r))
        break
      }

      case 'identity': {
        const [idName, identity] = this.identity()
        const where = this.pick(['signedBy', 'sigstoreSigned', 'signedBaseLayer'])
        const req =
          where === 'signedBy'
            ? obj(['type', str('signedBy')], ['keyType', str('GPGKeys')], ['keyPath', str(this.paths.gpgKey)], ['signedIdentity', identity])
            : where === 'sigstoreSigned'
              ? obj(['type', str('sigstoreSigned')], ['keyPath', str(this.paths.gpgKey)], ['signedIdentity', identity])
              : obj(['type', str('signedBaseLayer')], ['baseLayerIdentity', identity])
        name = `${where}:${idName}`
        tree = this.policy([accept], obj(['docker', obj(['a.example.com', arr(req)])]))
        break
      }

      case 'scope': {
        const transport = PolicyGenerator.TRANSPORTS[Math.floor(i / 7) % PolicyGenerator.TRANSPORTS.length]
        const scope = this.scope(transport)
        const [reqName, req] = this.requirement(false)
        name = `scope:${transport}:${JSON.stringify(scope)}:${reqName}`
        tree = this.policy([accept], obj([transport, obj([scope, arr(req)])]))
        break
      }

      case 'keyfield': {
        const [reqName, req] = this.chance(0.6) ? this.signedBy(true) : this.sigstoreSigned(true)
        name = reqName
        tree = this.chance(0.5) ? this.policy([req]) : this.policy([accept], obj(['docker', obj(['a.example.com', arr(req)])]))
        break
      }

      case 'json': {
        const [reqName, req] = this.requirement(false)
        const text = render(this.policy([req], obj(['docker', obj(['a.example.com', arr(accept)])])), this.chance(0.5) ? 4 : 0)
        const [what, bytes] = this.mutateText(text)
        return {name: `${what}:${reqName}`, bytes}
      }

      case 'structure': {
        const [what, node] = this.pick<[string, J]>([
          ['default-missing', obj(['transports', obj()])],
          ['default-null', obj(['default', nul])],
          ['default-empty', obj(['default', arr()])],
          ['default-object', obj(['default', obj(['type', str('reject')])])],
          ['default-string', obj(['default', str('reject')])],
          ['transports-null', this.policy([accept], nul)],
          ['transports-array', this.policy([accept], arr())],
          ['transports-empty', this.policy([accept], obj())],
          ['transport-null', this.policy([accept], obj(['docker', nul]))],
          ['transport-array', this.policy([accept], obj(['docker', arr()]))],
          ['transport-empty', this.policy([accept], obj(['docker', obj()]))],
          ['scope-null', this.policy([accept], obj(['docker', obj(['a.example.com', nul])]))],
          ['scope-empty', this.policy([accept], obj(['docker', obj(['a.example.com', arr()])]))],
          ['scope-object', this.policy([accept], obj(['docker', obj(['a.example.com', accept])]))],
          ['transport-name-empty', this.policy([accept], obj(['', obj(['x', arr(accept)])]))],
          ['transport-case', this.policy([accept], obj(['Docker', obj(['a.example.com', arr(accept)])]))],
          ['duplicate-transport', this.policy([accept], obj(['docker', obj()], ['docker', obj()]))],
          ['duplicate-scope', this.policy([accept], obj(['docker', obj(['a.example.com', arr(accept)], ['a.example.com', arr(accept)])]))],
          ['many-requirements', this.policy(Array.from({length: 50}, () => accept))],
          ['top-level-unknown', obj(['default', arr(accept)], ['version', raw('1')])],
          ['top-level-array', arr(obj(['default', arr(accept)]))],
        ])
        name = what
        tree = node
        break
      }

      default: {
        const reqs = Array.from({length: 1 + this.int(2)}, () => this.requirement(false))
        const transport = this.pick(PolicyGenerator.TRANSPORTS)
        const base = this.policy(
          reqs.map(([, r]) => r),
          obj([transport, obj([this.scope(transport), arr(this.requirement(false)[1])])]),
        )
        const [what, mutated] = this.mutateTree(base)
        name = `${what}:${reqs.map(([n]) => n).join('+')}`
        tree = mutated
      }
    }

    return {name, bytes: Buffer.from(render(tree, this.chance(0.3) ? 2 : 0), 'utf8')}
  }
}

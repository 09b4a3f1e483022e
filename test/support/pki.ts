/**
 * X.509 certificates made with openssl for sigstore `pki` tests: CA roots,
 * intermediates, and Fulcio-style signing (leaf) certificates carrying an
 * email and/or DNS subjectAltName and the codeSigning extended key usage
 * that containers/image demands (signature/pki_cert.go).
 */
import {createPrivateKey, type KeyObject} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {mustRun} from './lab.ts'

export interface TestCertificate {
  /** Subject common name, also the files' base name. */
  name: string
  certFile: string
  keyFile: string
  certPem: string
  privateKey: KeyObject
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
let serial = Date.now()

async function finish(dir: string, name: string): Promise<TestCertificate> {
  const certFile = path.join(dir, `${name}.crt`)
  const keyFile = path.join(dir, `${name}.key`)
  return {name, certFile, keyFile, certPem: await readFile(certFile, 'utf8'), privateKey: createPrivateKey(await readFile(keyFile, 'utf8'))}
}

/** A self-signed CA root; `extensions` replace its basicConstraints and keyUsage (openssl -addext values). */
export async function makeRootCa(dir: string, name: string, extensions = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']): Promise<TestCertificate> {
  await mustRun('openssl', [
    'req', '-x509', ...EC, '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.crt`), '-subj', `/O=imagetrust test/CN=${name}`, '-days', '3650',
    ...extensions.flatMap((e) => ['-addext', e]),
  ])
  return finish(dir, name)
}

/** A certificate issued by `issuer` with these X.509v3 extensions. */
async function issue(dir: string, name: string, issuer: TestCertificate, extensions: string[], days: number): Promise<TestCertificate> {
  const csr = path.join(dir, `${name}.csr`)
  const ext = path.join(dir, `${name}.ext`)
  await writeFile(ext, extensions.join('\n') + '\n')
  await mustRun('openssl', ['req', '-new', ...EC, '-keyout', path.join(dir, `${name}.key`), '-out', csr, '-subj', `/O=imagetrust test/CN=${name}`])
  await mustRun('openssl', [
    'x509', '-req', '-in', csr, '-CA', issuer.certFile, '-CAkey', issuer.keyFile, '-set_serial', String(serial++), '-days', String(days), '-sha256', '-extfile', ext, '-out', path.join(dir, `${name}.crt`),
  ])
  return finish(dir, name)
}

export function makeIntermediateCa(dir: string, name: string, issuer: TestCertificate): Promise<TestCertificate> {
  return issue(dir, name, issuer, ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign'], 3650)
}

/** A signing certificate as Fulcio issues them: digitalSignature, codeSigning, the subject only in subjectAltName. */
export function makeLeaf(dir: string, name: string, issuer: TestCertificate, subject: {email?: string; hostname?: string; uri?: string}): Promise<TestCertificate> {
  const san = [...(subject.email ? [`email:${subject.email}`] : []), ...(subject.hostname ? [`DNS:${subject.hostname}`] : []), ...(subject.uri ? [`URI:${subject.uri}`] : [])]
  return issue(dir, name, issuer, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=codeSigning', `subjectAltName=${san.join(',')}`], 30)
}

/**
 * Turns an engine's pull outcome into a verdict and a reason in plain words.
 * Unreachable registries or lookasides and auth failures prove nothing either
 * way, so they are inconclusive, never confirmed.
 */
export type Outcome = 'confirmed' | 'NOT ENFORCED' | 'broken' | 'inconclusive' | 'misconfigured'
export type Expectation = 'accept' | 'reject'

export interface PullOutcome {
  accepted: boolean
  /** The engine's own error text (empty when accepted). */
  message: string
}

type Rule = [RegExp, (match: RegExpMatchArray, context: {lookaside?: string}) => string]

const INCONCLUSIVE: Rule[] = [
  [/(?:reading signatures|signature-\d+)[^\n]*?(?:connection refused|no such host|i\/o timeout|no route to host|network is unreachable|EOF)/i, (_m, c) => `the lookaside ${c.lookaside ?? ''} is unreachable`.replace('  ', ' ')],
  [/reading signature from ([^:\s]+:\/\/\S+): status (\d+)/i, (m) => `the lookaside answered HTTP ${m[2]} for ${m[1]}`],
  [/(?:connection refused|no such host|i\/o timeout|no route to host|network is unreachable)/i, () => 'the registry is unreachable'],
  [/server gave HTTP response to HTTPS client/i, () => 'the registry speaks plain HTTP; run verify with --no-tls-verify if that is intended'],
  [/(?:unauthorized|authentication required|requested access to the resource is denied)/i, () => 'the registry needs authentication (log in with podman login)'],
  [/(?:manifest unknown|name unknown|not found: manifest)/i, () => 'the image does not exist in the registry'],
  [/(?:x509|certificate)/i, () => 'TLS certificate problem talking to the registry'],
]

const REJECTIONS: Rule[] = [
  [/A signature was required, but no signature exists/, (_m, c) => `no signature found at the lookaside${c.lookaside ? ` ${c.lookaside}` : ''}`],
  [/Signature by key ([0-9A-F]+) is not accepted/, (m) => `signed by another key (${m[1]}), not one the policy trusts`],
  [/Invalid GPG signature.*?Fingerprint:\\*"([0-9A-F]+)\\*"/, (m) => `signed by another key (${m[1]}), not one the policy trusts`],
  [/Signature for identity ([^\s]+) is not accepted/, (m) => `identity mismatch: the signature is for ${m[1]}`],
  [/open (\S+): no such file or directory/, (m) => `key file missing: ${m[1]}`],
  [/No public keys imported/, () => 'the key file named by the policy holds no public key'],
  [/invalid policy in "([^"]+)": (.*)/, (m) => `policy ${m[1]} is invalid: ${m[2]}`],
  [/is rejected by policy/, () => 'the policy rejects this image'],
  [/sigstore disabled/, () => 'this containers/image build cannot verify sigstore signatures (Debian disables it)'],
]

export function isPolicyRejection(message: string): boolean {
  return /Source image rejected|rejected by policy|invalid policy in|signature was required/i.test(message)
}

function explain(rules: Rule[], message: string, context: {lookaside?: string}): string | undefined {
  for (const [pattern, describe] of rules) {
    const match = message.match(pattern)
    if (match) return describe(match, context)
  }

  return undefined
}

function lastLine(message: string): string {
  return message.trim().split('\n').pop()?.replace(/^time="[^"]*" level=\w+ msg="(.*)"$/, '$1') ?? ''
}

export function classify(expect: Expectation, pull: PullOutcome, context: {lookaside?: string} = {}): {outcome: Outcome; reason: string} {
  if (pull.accepted) {
    return expect === 'accept'
      ? {outcome: 'confirmed', reason: 'accepted, as expected'}
      : {outcome: 'NOT ENFORCED', reason: 'an image that must be refused was accepted'}
  }

  if (!isPolicyRejection(pull.message)) {
    return {outcome: 'inconclusive', reason: explain(INCONCLUSIVE, pull.message, context) ?? `the pull failed for a reason other than policy: ${lastLine(pull.message)}`}
  }

  const reason = explain(REJECTIONS, pull.message, context) ?? lastLine(pull.message)
  return expect === 'reject' ? {outcome: 'confirmed', reason: `rejected: ${reason}`} : {outcome: 'broken', reason}
}

import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseCrioLog, parsePodmanEvents} from '../../src/audit/history.ts'
import {parseSince} from '../../src/audit/since.ts'
import {ImagetrustError} from '../../src/lib/errors.ts'

const NOW = new Date('2026-12-06T12:00:00Z')

describe('audit --since values', () => {
  const cases: Array<[string, string, string]> = [
    ['1h', '2026-12-06T11:00:00.000Z', 'in the last hour'],
    ['90m', '2026-12-06T10:30:00.000Z', 'in the last 90 minutes'],
    ['7d', '2026-11-29T12:00:00.000Z', 'in the last 7 days'],
    ['2w', '2026-11-22T12:00:00.000Z', 'in the last 2 weeks'],
    ['2026-12-01T00:00:00Z', '2026-12-01T00:00:00.000Z', 'since 2026-12-01T00:00:00.000Z'],
    ['2026-12-01T02:00:00+02:00', '2026-12-01T00:00:00.000Z', 'since 2026-12-01T00:00:00.000Z'],
    ['2026-12-01T00:00:00.5Z', '2026-12-01T00:00:00.500Z', 'since 2026-12-01T00:00:00.500Z'],
  ]
  for (const [value, since, phrase] of cases) {
    it(`${value} → ${since}`, () => {
      const window = parseSince(value, NOW)
      assert.deepEqual({since: window.since.toISOString(), until: window.until.toISOString(), phrase: window.phrase}, {since, until: NOW.toISOString(), phrase})
    })
  }

  for (const bad of ['', '7', 'h', '1y', '-1h', '0d', '7 days', '2026-12-01', '2026-12-01T00:00:00', '2026-02-30T00:00:00Z', '2026-12-06T12:00:00Z', '2027-01-01T00:00:00Z']) {
    it(`refuses ${JSON.stringify(bad)} as a usage error`, () => {
      assert.throws(() => parseSince(bad, NOW), (error: unknown) => error instanceof ImagetrustError && error.exitCode === 64 && error.message.startsWith(`--since "${bad}": `))
    })
  }
})

describe('pull records', () => {
  const window = parseSince('1h', NOW)

  it('podman events --format json: pulls only, one object per line (Podman 4.3) or one array', () => {
    const lines = [
      '{"Status":"refresh","Time":"2026-12-06T11:59:00Z","Type":"system","Attributes":null}',
      '{"Name":"127.0.0.1:5000/shop/app:1","Status":"pull","Time":"2026-12-06T11:59:01.5Z","Type":"image","Attributes":null}',
    ]
    const expected = [{source: 'podman', reference: '127.0.0.1:5000/shop/app:1', image: undefined, time: new Date('2026-12-06T11:59:01.5Z')}]
    assert.deepEqual(parsePodmanEvents(lines.join('\n')), expected)
    assert.deepEqual(parsePodmanEvents(`[${lines.join(',')}]`), expected)
    assert.deepEqual(parsePodmanEvents(''), [])
  })

  it('a broken or hostile event line is named and skipped, and the others still count', () => {
    const good = '{"Name":"127.0.0.1:5000/shop/app:1","Status":"pull","Time":"2026-12-06T11:59:01.5Z"}'
    const problems: string[] = []
    const pulls = parsePodmanEvents([good, '{"Name":"trunc', 'null', '{"Name":"evil\\u001b[2J/x:1","Status":"pull","Time":"2026-12-06T11:59:02Z"}', good].join('\n'), problems)
    assert.deepEqual(pulls.map((p) => p.reference), ['127.0.0.1:5000/shop/app:1', '127.0.0.1:5000/shop/app:1'])
    assert.deepEqual(problems, ['podman events: line 2 is not JSON, skipped', 'podman events: a pull of a name with control characters, skipped: "evil\\u001b[2J/x:1"'])
  })

  it("CRI-O's log: lines without a request id are never paired, and a name with control characters is skipped", () => {
    const problems: string[] = []
    const log = [
      'time="2026-12-06 11:30:00Z" level=info msg="Pulling image: attacker/lure:1"',
      'time="2026-12-06 11:30:01Z" level=info msg="Pulled image: quay.io/real@sha256:abc"',
      'time="2026-12-06 11:30:02Z" level=info msg="Pulling image: evil\u001b[2J/x:1" id=r9',
      'time="2026-12-06 11:30:03Z" level=info msg="Pulled image: sha256:def" id=r9',
    ]
    assert.deepEqual(parseCrioLog(log.join('\n'), window, problems).map((p) => p.reference), ['quay.io/real@sha256:abc'])
    assert.deepEqual(problems, ['CRI-O: a pull of a name with control characters, skipped: "evil\\u001b[2J/x:1"'])
  })

  it("CRI-O's log: the name from Pulling, the image and time from Pulled, matched by request id, inside the window", () => {
    const log = [
      'time="2026-12-06 11:30:00.100000000Z" level=info msg="Pulling image: quay.io/a/b:1" id=r1 name=/runtime.v1.ImageService/PullImage',
      'time="2026-12-06 11:30:00.200000000Z" level=info msg="Pulling image: quay.io/c/d:2" id=r2 name=/runtime.v1.ImageService/PullImage',
      'time="2026-12-06 11:30:01.000000000Z" level=info msg="Pulled image: quay.io/c/d@sha256:abc" id=r2 name=/runtime.v1.ImageService/PullImage',
      'time="2026-12-06 11:30:02.000000000Z" level=info msg="Pulled image: quay.io/a/b@sha256:def" id=r1 name=/runtime.v1.ImageService/PullImage',
      'time="2026-12-06 10:00:00.000000000Z" level=info msg="Pulling image: old/x:1" id=r3',
      'time="2026-12-06 10:00:01.000000000Z" level=info msg="Pulled image: old/x@sha256:111" id=r3',
      'time="2026-12-06 11:40:00.000000000Z" level=info msg="Pulling image: refused/y:1" id=r4',
      'time="2026-12-06 11:40:01.000000000Z" level=error msg="Failed to pull image refused/y:1" id=r4',
    ]
    assert.deepEqual(
      parseCrioLog(log.join('\n'), window).map((p) => [p.reference, p.image, p.time.toISOString()]),
      [
        ['quay.io/c/d:2', 'quay.io/c/d@sha256:abc', '2026-12-06T11:30:01.000Z'],
        ['quay.io/a/b:1', 'quay.io/a/b@sha256:def', '2026-12-06T11:30:02.000Z'],
      ],
    )
  })
})

describe('--crio-log', () => {
  it('a missing file, a device or a FIFO is a clear error before anything else is read', async () => {
    const {readPullHistory} = await import('../../src/audit/history.ts')
    const window = parseSince('1h', new Date())
    await assert.rejects(readPullHistory(window, {crioLog: '/nonexistent/crio.log'}), /--crio-log \/nonexistent\/crio\.log: no such file/)
    await assert.rejects(readPullHistory(window, {crioLog: '/dev/zero'}), /--crio-log \/dev\/zero: .*not a regular file/)
  })
})

describe("init's default step shows the pulls a reject default would have refused", () => {
  it('counts the pulled references from unlisted registries, of all pulled', async () => {
    const {rejectImpact, renderImpact} = await import('../../src/init/host.ts')
    const survey = {engines: [], configPaths: [], localImages: [], runningImages: [], pulled: {window: 'in the last 7 days', references: ['docker.io/library/alpine:3', 'r.example.com/team/app:1', 'localhost/built:1']}}
    const text = renderImpact(rejectImpact(survey, ['r.example.com/team']))
    assert.match(text, /^In the last 7 days, 1 of 3 pulled image\(s\) would have been refused \(from unlisted registries\)\.$/m)
    assert.match(text, /^ {2}pulled {5}docker\.io\/library\/alpine:3$/m)
    assert.doesNotMatch(renderImpact(rejectImpact({...survey, pulled: undefined}, [])), /pulled/)
  })
})

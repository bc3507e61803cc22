// The check report formats read back by real parsers (TAP 14 by tap-parser, JUnit by
// fast-xml-parser), the text and JSON forms, and the topology drawings (Mermaid, DOT).

import test from 'ava'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { Parser } from 'tap-parser'
import type { CheckReport } from '../../lib/lab/check.js'
import { toDot, toMermaid } from '../../lib/lab/graph.js'
import { parseLab } from '../../lib/lab/parse.js'
import { formatJson, formatJunit, formatTap, formatText } from '../../lib/lab/report.js'

const REPORT: CheckReport = {
  lab: 'l1',
  file: 'l1.yml',
  ms: 1234,
  score: 3,
  total: 6,
  checks: [
    { name: 'web pings db', ok: true, points: 1, detail: '198.18.1.11 answered', at: 'checks[0]', kind: 'ping', ms: 12 },
    { name: 'web # must not reach <x> & "y"', ok: false, points: 3, detail: 'it should not: 198.19.9.9 answered\nnext line', at: 'checks[1]', kind: 'ping', ms: 5000 },
    { name: 'web has route default', ok: true, points: 2, detail: 'default via 198.18.1.1 dev eth1', at: 'checks[2]', kind: 'has-route', ms: 1 },
  ],
}

function parseTap(text: string): Promise<{ ok: boolean; count: number; pass: number; fail: number; failures: Array<{ name: string; diag: Record<string, unknown> }> }> {
  return new Promise((resolve) => {
    const p = new Parser((r) => resolve({ ok: r.ok, count: r.count, pass: r.pass, fail: r.fail, failures: r.failures.map((f) => ({ name: f.name, diag: (f.diag ?? {}) as Record<string, unknown> })) }))
    p.end(text)
  })
}

test('TAP 14: a TAP parser reads the plan, each check, its YAML diagnostics, and the failure', async (t) => {
  const text = formatTap(REPORT)
  t.true(text.startsWith('TAP version 14\n1..3\n'))
  const r = await parseTap(text)
  t.false(r.ok)
  t.is(r.count, 3)
  t.is(r.pass, 2)
  t.is(r.fail, 1)
  t.is(r.failures[0]!.name, 'web # must not reach <x> & "y"', 'the # is escaped, not a directive')
  t.is(r.failures[0]!.diag.detail, 'it should not: 198.19.9.9 answered\nnext line')
  t.is(r.failures[0]!.diag.points, 3)
  t.is(r.failures[0]!.diag.at, 'checks[1]')
})

test('TAP 14: all passed parses as ok', async (t) => {
  const r = await parseTap(formatTap({ ...REPORT, checks: [REPORT.checks[0]!], score: 1, total: 1 }))
  t.true(r.ok)
  t.is(r.count, 1)
})

test('JUnit: valid XML, one testcase per check, the failure with its message, the score as properties', (t) => {
  const text = formatJunit(REPORT)
  t.is(XMLValidator.validate(text), true)
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['testcase', 'property'].includes(name) }).parse(text) as any
  const suite = doc.testsuites.testsuite
  t.is(doc.testsuites.tests, '3')
  t.is(suite.failures, '1')
  t.is(suite.testcase.length, 3)
  t.is(suite.testcase[1].name, 'web # must not reach <x> & "y"')
  t.is(suite.testcase[1].failure.message, 'it should not: 198.19.9.9 answered\nnext line')
  t.is(suite.testcase[0].failure, undefined)
  t.deepEqual(Object.fromEntries(suite.properties.property.map((p: { name: string; value: string }) => [p.name, p.value])), { file: 'l1.yml', score: '3', total: '6' })
})

test('text: a mark per check, the failure detail, then the score', (t) => {
  const lines = formatText(REPORT).trimEnd().split('\n')
  t.is(lines[0], '✓ web pings db')
  t.regex(lines[1]!, /^✗ web # must not reach <x> & "y" \(3 points\): it should not: 198\.19\.9\.9 answered/)
  t.is(lines.at(-1), 'score 3/6')
})

test("json: LAB.md's shape {checks:[{name,ok,points,detail}], score, total}", (t) => {
  const j = JSON.parse(formatJson(REPORT)) as { checks: Array<Record<string, unknown>>; score: number; total: number }
  t.is(j.score, 3)
  t.is(j.total, 6)
  t.deepEqual(Object.keys(j.checks[0]!).sort(), ['at', 'detail', 'name', 'ok', 'points'])
  t.deepEqual(j.checks.map((c) => c.ok), [true, false, true])
})

const LAB = parseLab(`name: g1
topology:
  nodes:
    web: {kind: linux, image: plumb-test:busybox}
    r1: {kind: netns}
    lan0: {kind: bridge, ips: [198.18.1.1/24]}
    ovs0: {kind: ovs-bridge}
  links:
    - endpoints: ["web:eth1", "lan0:web-eth1"]
      ips: [198.18.1.10/24]
    - type: veth
      endpoints: [{node: r1, interface: eth1}, {node: ovs0, interface: r1-eth1, vlan: 10}]
    - endpoints: ["r1:eth2", "host:r1-h"]
`)

test('Mermaid: every node with its shape, every link with its interfaces, addresses and VLAN', (t) => {
  const m = toMermaid(LAB)
  t.true(m.startsWith('graph LR\n'))
  t.regex(m, /n_web\["web<br>plumb-test:busybox"\]/)
  t.regex(m, /n_lan0\{\{"lan0<br>198\.18\.1\.1\/24"\}\}/)
  t.regex(m, /n_r1\(\["r1<br>netns"\]\)/)
  t.regex(m, /host\(\("host"\)\)/)
  t.regex(m, /n_web ---\|"eth1 198\.18\.1\.10\/24 — web-eth1"\| n_lan0/)
  t.regex(m, /n_r1 ---\|"eth1 — \(vlan 10\) — r1-eth1"\| n_ovs0/)
})

test('DOT: an undirected graph Graphviz reads, tail/head labels on the ends', (t) => {
  const d = toDot(LAB)
  t.regex(d, /^graph "g1" \{/)
  t.regex(d, /n_web -- n_lan0 \[taillabel="eth1 198\.18\.1\.10\/24", headlabel="web-eth1"\];/)
  t.regex(d, /n_r1 -- n_ovs0 \[taillabel="eth1", headlabel="r1-eth1", label="vlan 10"\];/)
  t.regex(d, /host \[label="host", shape=doublecircle\];/)
  t.true(d.trimEnd().endsWith('}'))
})

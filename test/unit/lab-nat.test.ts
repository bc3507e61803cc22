// Which of plumb's firewall marks a lab file's `nat:` names (pure): deploy removes the lab's rules
// it does not name, inspect shows which are which. And which marks are the lab's at all.

import test from 'ava'
import { parseLab } from '../../lib/lab/parse.js'
import { nodeByName } from '../../lib/lab/names.js'
import { labNatMarks, namedByFile } from '../../lib/lab/nat.js'
import type { NatMark, RuleMark } from '../../lib/parse/index.js'

const FILE = `name: pt-n1
prefix: __lab-name
topology:
  nodes:
    web: {kind: netns}
    db: {kind: netns}
    other: {kind: netns}
    lan0: {kind: bridge}
nat:
  expose:
    - {node: web, ports: ["8080:80", "127.0.0.1::81", "5353:53/udp"]}
    - {node: db, ports: ["9000-9001:90-91"], to: 198.18.1.11}
  masquerade: [lan0, {target: 198.18.9.0/24, out: pt-up}]
  isolate: [{bridge: lan0, allow: [[web, db]]}]
`

const web = 'netns:pt-n1-web'
const db = 'netns:pt-n1-db'
const exp = (over: Partial<Extract<NatMark, { op: 'expose' }>>): NatMark => ({ op: 'expose', guest: web, to: '198.18.1.10:80', hostIp: '', hostPort: 8080, proto: 'tcp', dev: 'lan0', auto: false, lab: 'pt-n1', rec: {}, ...over })

test('namedByFile: each kind of entry, matched as its op finds it', (t) => {
  const lab = parseLab(FILE, 'n.yml')
  const named = namedByFile(lab, nodeByName(lab))
  const cases: Array<[string, NatMark, boolean]> = [
    ['the published port', exp({}), true],
    ['... to another guest port', exp({ to: '198.18.1.10:8080' }), false],
    ['... on another host port', exp({ hostPort: 8081 }), false],
    ['... of another guest', exp({ guest: 'netns:pt-n1-other' }), false],
    ['... on one host address only', exp({ hostIp: '198.18.1.1' }), false],
    ['... over UDP', exp({ proto: 'udp' }), false],
    ['a chosen port on 127.0.0.1 (PORTSPEC without a host port)', exp({ hostIp: '127.0.0.1', hostPort: 32768, to: '198.18.1.10:81', auto: true }), true],
    ['... but not one given by hand', exp({ hostIp: '127.0.0.1', hostPort: 32768, to: '198.18.1.10:81', auto: false }), false],
    ['a UDP port', exp({ hostPort: 5353, to: '198.18.1.10:53', proto: 'udp' }), true],
    ['a range, to the address given', exp({ guest: db, hostPort: 9001, to: '198.18.1.11:91' }), true],
    ['... to another address', exp({ guest: db, hostPort: 9001, to: '198.18.1.12:91' }), false],
    ['... outside the range', exp({ guest: db, hostPort: 9002, to: '198.18.1.11:92' }), false],
    ['the bridge masqueraded', { op: 'masquerade', src: 'lan0', bridge: 'lan0', rec: {} }, true],
    ['... out of one interface only', { op: 'masquerade', src: 'lan0', bridge: 'lan0', out: 'pt-up', rec: {} }, false],
    ['the CIDR out of its interface', { op: 'masquerade', src: '198.18.9.0/24', out: 'pt-up', rec: {} }, true],
    ['... out of everything', { op: 'masquerade', src: '198.18.9.0/24', rec: {} }, false],
    ['the isolation', { op: 'isolate', bridge: 'lan0', rec: {} }, true],
    ['another bridge isolated', { op: 'isolate', bridge: 'lan1', rec: {} }, false],
    ['the pair', { op: 'allow', bridge: 'lan0', a: web, b: db, rec: {} }, true],
    ['the pair the other way round', { op: 'allow', bridge: 'lan0', a: db, b: web, rec: {} }, true],
    ['another pair', { op: 'allow', bridge: 'lan0', a: web, b: 'netns:pt-n1-other', rec: {} }, false],
  ]
  for (const [what, m, want] of cases) t.is(named(m), want, what)
})

test('namedByFile: a file without nat: names nothing', (t) => {
  const lab = parseLab(FILE.replace(/^nat:[\s\S]*$/m, ''), 'n.yml')
  const named = namedByFile(lab, nodeByName(lab))
  t.false(named(exp({})))
  t.false(named({ op: 'isolate', bridge: 'lan0', rec: {} }))
})

test("labNatMarks: the lab's own marks, one per rule key; attach-veth's, other labs' and unmarked ones are not", (t) => {
  const marks: RuleMark[] = [
    exp({}),
    exp({ rec: { fwd: '0' } }), // another rule of the same published port
    exp({ hostPort: 8081, lab: 'pt-other' }),
    { ...exp({ hostPort: 8082 }), lab: undefined } as RuleMark,
    { op: 'bridge', bridge: 'lan0' },
    { op: 'isolate', bridge: 'lan0', lab: 'pt-n1', rec: {} },
    { op: 'allow', bridge: 'lan0', a: web, b: db, lab: 'pt-n1', rec: {} },
    { op: 'allow', bridge: 'lan0', a: db, b: web, lab: 'pt-n1', rec: {} }, // its other direction
  ]
  t.deepEqual(
    labNatMarks(marks, 'pt-n1').map((m) => m.op),
    ['expose', 'isolate', 'allow'],
  )
})

// The lab planner against hand-made observations (no root): what a deploy does when nothing is
// there, when everything is, when a link lost an address, when the file dropped or changed a
// link, when a name is taken by something that is not the lab's, and what it removes.

import test from 'ava'
import { PlumbError } from '../../lib/errors.js'
import type { AddrInfo, LinkInfo, RouteInfo } from '../../lib/kernel/types.js'
import { formatMark } from '../../lib/parse/index.js'
import type { OwnerMark } from '../../lib/parse/index.js'
import { parseLab } from '../../lib/lab/parse.js'
import { isEmptyPlan, plan } from '../../lib/lab/plan.js'
import type { Plan, Step } from '../../lib/lab/plan.js'
import type { GuestState, Observed, ObservedNode } from '../../lib/lab/observe.js'
import type { Lab } from '../../lib/lab/types.js'

const FILE = `name: pl
prefix: pt
topology:
  nodes:
    a: {kind: netns}
    b: {kind: netns}
    br: {kind: bridge}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
      ips: [198.18.40.0/31, 198.18.40.1/31]
    - endpoints: ["a:eth2", "br:pt-a2"]
      ips: [198.18.41.10/24@198.18.41.1]
`

let nextIndex = 10
const link = (name: string, mark?: OwnerMark, extra: Partial<LinkInfo> = {}): LinkInfo => ({ index: nextIndex++, name, mtu: 1500, up: true, operState: 'UP', ...(mark ? { alias: formatMark(mark) } : {}), ...extra })
const addr = (l: LinkInfo, cidr: string): AddrInfo => {
  const [address, prefix] = cidr.split('/')
  return { index: l.index, family: address!.includes(':') ? 6 : 4, address: address!, prefix: Number(prefix), permanent: true }
}
const dflt = (l: LinkInfo, gw: string): RouteInfo => ({ family: 4, dst: 'default', gateway: gw, oif: l.index, table: 254, scope: 'universe', protocol: 'static', onlink: false })
const lab = { lab: 'pl' }

function state(guest: string, links: LinkInfo[], addrs: AddrInfo[], routes: RouteInfo[] = []): GuestState {
  return { guest, label: guest, key: guest, ino: 1, dev: 1, links: [link('lo'), ...links], addrs, routes }
}

function observed(l: Lab, nodes: Record<string, Partial<ObservedNode>>, more: Partial<Observed> = {}): Observed {
  return {
    nodes: new Map(l.nodes.map((n) => [n.name, { node: n, exists: false, ours: false, ...nodes[n.name] }])),
    hostLinks: [],
    hostAddrs: [],
    strayContainers: [],
    strayNetns: [],
    strayBridges: [],
    strayOvsBridges: [],
    ovs: false,
    ovsBridges: new Map(),
    recovered: [],
    ...more,
  }
}

/** The deployed lab, as the kernel would show it. */
function deployed(l: Lab, tweak: { dropAddr?: string; extraLink?: LinkInfo; otherBridge?: boolean } = {}): Observed {
  const a1 = link('eth1', { v: 1, role: 'guest', op: 'p2p-link', guest: 'netns:pt-pl-a', ifname: 'eth1', peer: 'eth1', extra: { peerGuest: 'netns:pt-pl-b', ...lab } })
  const a2 = link('eth2', { v: 1, role: 'guest', op: 'attach-veth', guest: 'netns:pt-pl-a', ifname: 'eth2', peer: 'pt-a2', bridge: tweak.otherBridge ? 'br9' : 'br', extra: lab })
  const b1 = link('eth1', { v: 1, role: 'guest', op: 'p2p-link', guest: 'netns:pt-pl-b', ifname: 'eth1', peer: 'eth1', extra: { peerGuest: 'netns:pt-pl-a', ...lab } })
  const aAddrs = [addr(a1, '198.18.40.0/31'), addr(a2, '198.18.41.10/24')].filter((x) => `${x.address}/${x.prefix}` !== tweak.dropAddr)
  const br = link('br', { v: 1, role: 'bridge', op: 'lab', bridge: 'br', extra: lab }, { kind: 'bridge' })
  return observed(
    l,
    {
      a: { exists: true, ours: true, state: state('netns:pt-pl-a', [a1, a2, ...(tweak.extraLink ? [tweak.extraLink] : [])], aAddrs, [dflt(a2, '198.18.41.1')]) },
      b: { exists: true, ours: true, state: state('netns:pt-pl-b', [b1], [addr(b1, '198.18.40.1/31')]) },
      br: { exists: true, ours: true, hostLink: br },
    },
    { hostLinks: [br] },
  )
}

const kinds = (steps: Step[]): string[] => steps.map((s) => s.kind)

test('nothing there: every node made (bridge included), every link added, nothing removed', (t) => {
  const l = parseLab(FILE)
  const p = plan(l, observed(l, {}))
  t.deepEqual(p.nodes.flat().map((s) => (s.kind === 'create-node' ? s.node.name : '')), ['a', 'b', 'br'])
  t.deepEqual(kinds(p.links), ['add-link', 'add-link'])
  t.deepEqual(p.removals, [])
  t.deepEqual(p.inPlace, { nodes: 0, links: 0 })
})

test('everything in place: an empty plan (a second deploy changes nothing)', (t) => {
  const l = parseLab(FILE)
  const p = plan(l, deployed(l))
  t.true(isEmptyPlan(p), JSON.stringify(p, (k, v) => (k === 'lab' || k === 'node' ? undefined : v)))
  t.deepEqual(p.inPlace, { nodes: 3, links: 2 })
})

test('a lab-made link that lost its address: only that address is repaired', (t) => {
  const l = parseLab(FILE)
  const p = plan(l, deployed(l, { dropAddr: '198.18.40.0/31' }))
  t.deepEqual(p.links, [])
  t.deepEqual(p.removals, [])
  t.is(p.repairs.length, 1)
  t.like(p.repairs[0], { kind: 'repair', guest: 'netns:pt-pl-a', add: ['198.18.40.0/31'], del: [], routes: [] })
})

test('an address the file does not give, on a lab-made link, is taken away', (t) => {
  const l = parseLab(FILE.replace('198.18.40.0/31, 198.18.40.1/31', '198.18.40.2/31, 198.18.40.3/31'))
  const p = plan(l, deployed(l))
  t.like(p.repairs.find((r) => r.kind === 'repair' && r.ep.node === 'a'), { add: ['198.18.40.2/31'], del: ['198.18.40.0/31'] })
  t.like(p.repairs.find((r) => r.kind === 'repair' && r.ep.node === 'b'), { add: ['198.18.40.3/31'], del: ['198.18.40.1/31'] })
})

test('a link removed from the file: its interface is removed, nothing else changes', (t) => {
  const l = parseLab(FILE.replace(/    - endpoints: \["a:eth1", "b:eth1"\]\n      ips: .*\n/, ''))
  const p = plan(l, deployed(l))
  t.deepEqual(
    p.removals.map((s) => (s.kind === 'remove-link' ? `${s.guest} ${s.ifname}` : s.kind)),
    ['netns:pt-pl-a eth1', 'netns:pt-pl-b eth1'],
  )
  t.deepEqual(p.links, [])
  t.deepEqual(p.nodes, [])
})

test('a link added to the file: only it is made', (t) => {
  const l = parseLab(`${FILE}    - endpoints: ["b:eth2", "br:pt-b2"]\n`)
  const p = plan(l, deployed(l))
  t.deepEqual(p.links.map((s) => (s.kind === 'add-link' ? s.link.at : '')), ['topology.links[2]'])
  t.deepEqual(p.removals, [])
  t.deepEqual(p.repairs, [])
})

test('a link whose other side changed in the file is removed and made again', (t) => {
  const l = parseLab(FILE)
  const p = plan(l, deployed(l, { otherBridge: true }))
  t.deepEqual(kinds(p.removals), ['remove-link'])
  t.regex((p.removals[0] as Extract<Step, { kind: 'remove-link' }>).why, /attach-veth on br9/)
  t.deepEqual(p.links.map((s) => (s.kind === 'add-link' ? s.link.at : '')), ['topology.links[1]'])
})

test('an interface of that name the lab did not make is a conflict (exit 4), nothing planned', (t) => {
  const l = parseLab(FILE)
  const seen = deployed(l)
  const a = seen.nodes.get('a')!.state!
  a.links = a.links.map((x) => (x.name === 'eth2' ? { ...x, alias: undefined } as LinkInfo : x))
  const err = t.throws(() => plan(l, seen), { instanceOf: PlumbError }) as PlumbError
  t.is(err.exitCode, 4)
  t.regex(err.message, /topology\.links\[1\]\.endpoints\[0\]: a already has an interface "eth2" that lab pl did not make/)
})

test("lab-made interfaces the file does not name, and the lab's stray nodes and bridges, are removed", (t) => {
  const l = parseLab(FILE)
  const stray = link('eth9', { v: 1, role: 'guest', op: 'p2p-link', guest: 'netns:pt-pl-a', ifname: 'eth9', extra: lab })
  const foreign = link('eth8', { v: 1, role: 'guest', op: 'p2p-link', guest: 'netns:pt-pl-a', ifname: 'eth8' })
  const seen = deployed(l, { extraLink: stray })
  seen.nodes.get('a')!.state!.links.push(foreign)
  Object.assign(seen, { strayNetns: ['pt-pl-old'], strayBridges: ['brold'], strayContainers: [{ id: 'c1', name: 'pt-pl-x', running: true, labels: {}, image: 'i' }] })
  const p: Plan = plan(l, seen)
  t.deepEqual(
    p.removals.map((s) => `${s.kind} ${'name' in s ? s.name : 'ifname' in s ? s.ifname : ''}`),
    ['remove-container pt-pl-x', 'remove-netns pt-pl-old', 'remove-link eth9', 'remove-bridge brold'],
    "eth8 is plumb's but not the lab's: left alone",
  )
})

test('a node made now has its links made with it; exec lines run only in nodes made now', (t) => {
  const l = parseLab(FILE.replace('b: {kind: netns}', 'b: {kind: netns, exec: ["ip link"]}'))
  const seen = deployed(l)
  seen.nodes.set('b', { node: l.nodes[1]!, exists: false, ours: false })
  const p = plan(l, seen)
  t.deepEqual(p.nodes.flat().map((s) => (s.kind === 'create-node' ? s.node.name : '')), ['b'])
  t.deepEqual(p.links.map((s) => (s.kind === 'add-link' ? s.link.at : '')), ['topology.links[0]'])
  t.deepEqual(p.after.map((s) => (s.kind === 'exec' ? s.node.name : '')), ['b'])
})

test("a linux node's container stopped: started again (its netns is new), its links made again", (t) => {
  const l = parseLab('name: pl\nprefix: pt\ntopology:\n  nodes:\n    c: {kind: linux, image: x}\n    d: {kind: netns}\n  links:\n    - endpoints: ["c:eth1", "d:eth1"]\n')
  const seen = observed(l, { c: { exists: true, ours: true, container: { id: 'i', name: 'pt-pl-c', running: false, labels: {}, image: 'x' } }, d: { exists: true, ours: true, state: state('netns:pt-pl-d', [], []) } })
  const p = plan(l, seen)
  t.like(p.nodes.flat()[0], { kind: 'create-node', start: true })
  t.deepEqual(kinds(p.links), ['add-link'])
})

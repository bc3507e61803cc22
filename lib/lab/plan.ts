// The planner: what the file says against what exists (observe.ts), as the steps that make one
// into the other. Pure: a second deploy of the same file plans nothing; a link added to or
// removed from the file plans only that; a lab-made link that lost an address plans its repair.

import { conflict } from '../errors.js'
import type { AddrInfo, LinkInfo, RouteInfo } from '../kernel/types.js'
import { parseIpSpec, parseMac, parseMark, parseRouteSpec } from '../parse/index.js'
import { MARK_LAB, guestOf, isGuestNode } from './names.js'
import type { GuestState, Observed } from './observe.js'
import type { Lab, LabEndpoint, LabLink, LabNode } from './types.js'

export type Step =
  | { kind: 'remove-link'; guest: string; ifname: string; why: string }
  | { kind: 'remove-container'; name: string; id: string }
  | { kind: 'remove-netns'; name: string }
  | { kind: 'remove-bridge'; name: string }
  | { kind: 'remove-ovs-bridge'; name: string }
  /** a node to make; `start`: a container of the lab that stopped */
  | { kind: 'create-node'; node: LabNode; start?: boolean }
  | { kind: 'bridge-ips'; node: LabNode; add: string[] }
  | { kind: 'add-link'; link: LabLink }
  /** a lab-made link whose endpoint lost (or gained) addresses or routes */
  | { kind: 'repair'; link: LabLink; ep: LabEndpoint; guest: string; add: string[]; del: string[]; routes: string[] }
  | { kind: 'exec'; node: LabNode }

export interface Plan {
  lab: Lab
  /** first: what the lab made that the file no longer names (or names differently) */
  removals: Step[]
  /** then the nodes (in waves: a node sharing another's netns after it) */
  nodes: Step[][]
  links: Step[]
  repairs: Step[]
  /** last: exec lines of the nodes this deploy made */
  after: Step[]
  /** how much is already as the file says */
  inPlace: { nodes: number; links: number }
}

/** `web:eth1 -- lan0:web-eth1`: a link as the file's endpoints. */
export function describeLink(l: LabLink): string {
  switch (l.kind) {
    case 'macvlan':
      return `${l.a.node}:${l.a.ifname} -- macvlan:${l.parent}`
    case 'vxlan':
      return `${l.bridge} -- vxlan ${l.vni} ${l.remote.join(',')}`
    default:
      return `${l.a.node}:${l.a.ifname} -- ${l.b.node}:${l.b.ifname}`
  }
}

const sameSet = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x) => b.includes(x))

/** A guest's own addresses (not IPv6 link-local) on one interface, as CIDRs. */
export function addressesOn(addrs: AddrInfo[], index: number): string[] {
  return addrs.filter((a) => a.index === index && !(a.family === 6 && a.address.toLowerCase().startsWith('fe80:'))).map((a) => `${a.address}/${a.prefix}`)
}

/** What the owner mark of the guest side of `l` must say for it to be this link. */
function markMatches(l: LabLink, link: LinkInfo, nodes: Map<string, LabNode>): boolean {
  const m = parseMark(link.alias)
  if (!m || m.role !== 'guest') return false
  const other = (e: LabEndpoint): LabNode | undefined => nodes.get(e.node)
  switch (l.kind) {
    case 'bridge':
      return m.op === 'attach-veth' && m.bridge === other(l.b)?.runtime && m.peer === l.b.ifname
    case 'ovs':
      return m.op === 'ovs-port' && m.bridge === other(l.b)?.runtime && m.peer === l.b.ifname
    case 'p2p':
      return m.op === 'p2p-link' && m.extra?.peerGuest === guestOf(other(l.b)!) && m.peer === l.b.ifname
    case 'host':
      return m.op === 'p2p-link' && m.extra?.peerGuest === 'host' && m.peer === l.b.ifname
    case 'macvlan':
      return m.op === 'macvlan' && m.extra?.parent === l.parent && m.extra?.mode === l.mode
    case 'vxlan':
      return false
  }
}

/** The netns that node's interfaces live in (a node sharing another's netns: that one's). */
function netnsOwner(node: LabNode, nodes: Map<string, LabNode>): LabNode {
  let n = node
  for (let i = 0; n.sharesWith && i < 16; i++) n = nodes.get(n.sharesWith)!
  return n
}

interface EndpointCheck {
  /** the link is not what the file says (another kind, peer, MTU, MAC): remove and make again */
  replace?: string
  repair?: { add: string[]; del: string[]; routes: string[] }
}

function checkEndpoint(ep: LabEndpoint, link: LinkInfo, state: GuestState, mtu: number | undefined): EndpointCheck {
  if (mtu !== undefined && link.mtu !== mtu) return { replace: `its MTU is ${link.mtu}, not ${mtu}` }
  if (ep.mac !== undefined && link.mac !== parseMac(ep.mac)) return { replace: `its MAC is ${link.mac ?? '?'}, not ${parseMac(ep.mac)}` }
  const add: string[] = []
  const del: string[] = []
  const routes: string[] = []
  const defaults = (family: 4 | 6): RouteInfo[] => state.routes.filter((r) => r.family === family && r.dst === 'default' && r.table === 254)
  if (!ep.ips.includes('dhcp')) {
    const have = addressesOn(state.addrs, link.index)
    const want = ep.ips.map((s) => parseIpSpec(s)).filter((ip) => ip.kind === 'static')
    for (const ip of want) {
      const gwMissing = ip.gateway !== undefined && !defaults(ip.family).some((r) => r.gateway === ip.gateway && r.oif === link.index)
      if (!have.includes(ip.cidr) || gwMissing) add.push(`${ip.cidr}${ip.gateway ? `@${ip.gateway}` : ''}`)
    }
    for (const cidr of have) if (!want.some((w) => w.cidr === cidr)) del.push(cidr)
  }
  for (const text of ep.routes) {
    const r = parseRouteSpec(text)
    const present = state.routes.some((x) => x.table === 254 && x.dst === r.dst && x.oif === link.index && (r.gateway === undefined || x.gateway === r.gateway))
    if (!present) routes.push(text)
  }
  return add.length || del.length || routes.length ? { repair: { add, del, routes } } : {}
}

export function plan(lab: Lab, seen: Observed): Plan {
  const nodes = new Map(lab.nodes.map((n) => [n.name, n]))
  const p: Plan = { lab, removals: [], nodes: [], links: [], repairs: [], after: [], inPlace: { nodes: 0, links: 0 } }

  // What the lab made that the file no longer names.
  for (const c of seen.strayContainers) p.removals.push({ kind: 'remove-container', name: c.name, id: c.id })
  for (const n of seen.strayNetns) p.removals.push({ kind: 'remove-netns', name: n })

  // Nodes: make the missing ones; a stopped container of the lab is started (its netns is new: links follow).
  const made = new Set<string>()
  const waveOf = new Map<string, number>()
  const wave = (n: LabNode): number => {
    if (!n.sharesWith) return 0
    if (!waveOf.has(n.name)) waveOf.set(n.name, wave(nodes.get(n.sharesWith)!) + 1)
    return waveOf.get(n.name)!
  }
  for (const n of lab.nodes) {
    const o = seen.nodes.get(n.name)!
    let step: Step | undefined
    if (!o.exists) {
      if (n.existing) throw conflict(`${lab.file}: ${n.at}: container "${n.runtime}" (container:) does not exist`, `start it first, or drop container: to let the lab start one`)
      step = { kind: 'create-node', node: n }
    } else if (n.kind === 'linux' && !o.container?.running) {
      if (!o.ours) throw conflict(`${lab.file}: ${n.at}: container "${n.runtime}" is not running`, `start it: docker start ${n.runtime}`)
      step = { kind: 'create-node', node: n, start: true }
    }
    if (step) {
      made.add(n.name)
      const w = wave(n)
      ;(p.nodes[w] ??= []).push(step)
    } else p.inPlace.nodes++
    if (n.kind === 'bridge') {
      const have = o.hostLink ? addressesOn(seen.hostAddrs, o.hostLink.index) : []
      const add = n.ips.filter((c) => !have.includes(c))
      if (add.length) p.repairs.push({ kind: 'bridge-ips', node: n, add })
    }
  }
  // A node whose netns owner is remade is remade with it (network-mode container:X).
  for (const n of lab.nodes) if (!made.has(n.name) && made.has(netnsOwner(n, nodes).name)) throw conflict(`${lab.file}: ${n.at}: "${n.name}" shares the netns of "${netnsOwner(n, nodes).name}", which this deploy has to start again`, `destroy and deploy the lab again`)

  // Links: each one's guest side is looked up by name in its netns.
  const claimed = new Set<string>()
  const stateOf = (n: LabNode): GuestState | undefined => (made.has(n.name) ? undefined : seen.nodes.get(netnsOwner(n, nodes).name)?.state)
  for (const l of lab.links) {
    if (l.kind === 'vxlan') continue // apply-extras: not an interface of a guest
    const aNode = nodes.get(l.a.node)!
    const aState = stateOf(aNode)
    const key = (n: LabNode, ifname: string): string => `${netnsOwner(n, nodes).name}/${ifname}`
    claimed.add(key(aNode, l.a.ifname))
    const bNode = l.kind === 'p2p' ? nodes.get(l.b.node)! : undefined
    if (l.kind === 'p2p') claimed.add(key(bNode!, l.b.ifname))
    if (!aState || (bNode && !stateOf(bNode))) {
      // A node made (or remade) now: its links are new. (A p2p peer remade now: its end is gone, so is this one.)
      p.links.push({ kind: 'add-link', link: l })
      continue
    }
    const link = aState.links.find((x) => x.name === l.a.ifname)
    if (!link) {
      if (l.kind === 'p2p') {
        const bEnd = stateOf(bNode!)!.links.find((x) => x.name === l.b.ifname)
        if (bEnd) throw conflict(`${lab.file}: ${l.b.at}: ${l.b.node} already has an interface "${l.b.ifname}" that is not this link's other end`, `remove it, or give the endpoint another name`)
      }
      p.links.push({ kind: 'add-link', link: l })
      continue
    }
    const m = parseMark(link.alias)
    if (!m || m.extra?.[MARK_LAB] !== lab.name) {
      throw conflict(`${lab.file}: ${l.a.at}: ${l.a.node} already has an interface "${l.a.ifname}" that lab ${lab.name} did not make`, `remove it (plumb detach ${guestOf(aNode)} ${l.a.ifname}, or ip link del), or give the endpoint another name`)
    }
    let why = markMatches(l, link, nodes) ? undefined : `it is plumb's ${m.op}${m.bridge ? ` on ${m.bridge}` : ''}${m.peer ? ` (peer ${m.peer})` : ''}, not ${describeLink(l)}`
    const ends: Array<[LabEndpoint, LinkInfo, GuestState]> = [[l.a, link, aState]]
    if (!why && bNode && l.kind === 'p2p') {
      const bState = stateOf(bNode)!
      const bLink = bState.links.find((x) => x.name === l.b.ifname)
      if (!bLink) why = `its other end is not ${l.b.node}:${l.b.ifname}`
      else ends.push([l.b, bLink, bState])
    }
    if (!why && l.kind === 'host') {
      const hostEnd = seen.hostLinks.find((x) => x.name === l.b.ifname)
      const want = l.b.ips.map((s) => parseIpSpec(s)).flatMap((ip) => (ip.kind === 'static' ? [ip.cidr] : []))
      if (!hostEnd) why = `its host end ${l.b.ifname} is gone`
      else if (!sameSet(want, addressesOn(seen.hostAddrs, hostEnd.index).filter((c) => want.includes(c)))) why = `its host end ${l.b.ifname} lacks ${want.join(', ')}`
    }
    const checks = why ? [] : ends.map(([ep, li, st]) => ({ ep, st, c: checkEndpoint(ep, li, st, l.mtu) }))
    why ??= checks.find((x) => x.c.replace)?.c.replace
    if (why) {
      p.removals.push({ kind: 'remove-link', guest: guestOf(aNode), ifname: l.a.ifname, why: `${describeLink(l)} changed in the file: ${why}` })
      p.links.push({ kind: 'add-link', link: l })
      continue
    }
    p.inPlace.links++
    for (const { ep, c } of checks) {
      if (c.repair) p.repairs.push({ kind: 'repair', link: l, ep, guest: guestOf(nodes.get(ep.node)!), ...c.repair })
    }
  }

  // Lab-made interfaces no link of the file claims (a link removed from the file, or moved).
  const visited = new Set<string>()
  for (const n of lab.nodes) {
    if (!isGuestNode(n) || made.has(n.name)) continue
    const owner = netnsOwner(n, nodes)
    const st = seen.nodes.get(owner.name)?.state
    if (!st || visited.has(owner.name)) continue
    visited.add(owner.name)
    for (const link of st.links) {
      const m = parseMark(link.alias)
      if (!m || (m.role !== 'guest' && m.role !== 'moved') || m.extra?.[MARK_LAB] !== lab.name) continue
      if (claimed.has(`${owner.name}/${link.name}`)) continue
      p.removals.push({ kind: 'remove-link', guest: guestOf(owner), ifname: link.name, why: `${owner.name}:${link.name} is no longer in the file` })
    }
  }
  for (const b of seen.strayBridges) p.removals.push({ kind: 'remove-bridge', name: b })
  for (const b of seen.strayOvsBridges) p.removals.push({ kind: 'remove-ovs-bridge', name: b })

  // exec lines run once, in the nodes this deploy made (containerlab runs them at deploy time).
  for (const n of lab.nodes) if (made.has(n.name) && n.exec.length) p.after.push({ kind: 'exec', node: n })
  return p
}

/** Whether the plan changes anything. */
export function isEmptyPlan(p: Plan): boolean {
  return p.removals.length + p.nodes.flat().length + p.links.length + p.repairs.length + p.after.length === 0
}

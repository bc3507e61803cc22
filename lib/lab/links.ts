// A lab link is one of plumb's own ops (attach-veth, ovs-port, p2p-link, macvlan), run as its
// transaction with the lab's name in its marks, plus set-ip for what the op itself does not take
// (a p2p end's further addresses and routes). Also the `plumb ...` line each one equals.

import { asPlumbError } from '../errors.js'
import type { HandlePool } from '../ops/context.js'
import { attachVeth } from '../ops/attach-veth.js'
import { detach } from '../ops/detach.js'
import { macvlan } from '../ops/macvlan.js'
import { ovsPort } from '../ops/ovs-port.js'
import { p2pLink } from '../ops/p2p-link.js'
import { setIp } from '../ops/set-ip.js'
import { parseIpSpec } from '../parse/index.js'
import { guestOf, quote } from './names.js'
import type { LabEndpoint, LabLink, LabNode } from './types.js'

type LinkOf<K extends LabLink['kind']> = Extract<LabLink, { kind: K }>
type VethLink = LinkOf<'p2p' | 'host'>

/**
 * The address p2p-link itself gives each end: the first static address without a gateway on
 * each side, when both are of one family (p2p-link adds the peer routes a /32 needs); the rest
 * goes through set-ip.
 */
export function p2pAddresses(l: VethLink): { ipA?: string; ipB?: string; restA: string[]; restB: string[] } {
  const first = (ep: LabEndpoint, family?: 4 | 6): string | undefined =>
    ep.ips.find((s) => {
      const ip = parseIpSpec(s)
      return ip.kind === 'static' && ip.gateway === undefined && (family === undefined || ip.family === family)
    })
  let ipA = first(l.a)
  let ipB = first(l.b, ipA ? (parseIpSpec(ipA) as { family: 4 | 6 }).family : undefined)
  if (ipA === undefined && ipB !== undefined) ipB = first(l.b)
  if (ipA !== undefined && ipB === undefined && l.b.ips.length) ipA = undefined
  return {
    ...(ipA !== undefined ? { ipA } : {}),
    ...(ipB !== undefined ? { ipB } : {}),
    restA: l.a.ips.filter((s) => s !== ipA),
    restB: l.b.ips.filter((s) => s !== ipB),
  }
}

const line = (...words: Array<string | undefined | false>): string => words.filter((w): w is string => typeof w === 'string').map(quote).join(' ')
const opt = (flag: string, v: string | number | undefined): string[] => (v === undefined ? [] : [flag, String(v)])
const each = (flag: string, vs: string[]): string[] => vs.flatMap((v) => [flag, v])

/** The plumb command lines a lab link is (for --dry-run, and the progress of a deploy). */
export function linkLines(l: LabLink, nodes: Map<string, LabNode>): string[] {
  const g = (e: LabEndpoint): string => guestOf(nodes.get(e.node)!)
  switch (l.kind) {
    case 'bridge':
      return [line('plumb', 'attach-veth', g(l.a), nodes.get(l.b.node)!.runtime, ...l.a.ips, '-i', l.a.ifname, '-l', l.b.ifname, ...opt('--mac', l.a.mac), ...opt('--mtu', l.mtu), ...each('--route', l.a.routes), '--replace-gateway', '--no-firewall')]
    case 'ovs':
      return [line('plumb', 'ovs-port', g(l.a), nodes.get(l.b.node)!.runtime, ...l.a.ips, '-i', l.a.ifname, '-l', l.b.ifname, ...opt('--tag', l.b.vlan), ...opt('--trunks', l.b.trunks?.join(',')), ...opt('--mac', l.a.mac), ...opt('--mtu', l.mtu), ...each('--route', l.a.routes), '--replace-gateway')]
    case 'macvlan':
      return [line('plumb', 'macvlan', g(l.a), l.parent, ...l.a.ips, '-i', l.a.ifname, '--mode', l.mode, ...opt('--mac', l.a.mac), ...opt('--mtu', l.mtu), ...each('--route', l.a.routes), '--replace-gateway')]
    case 'p2p':
    case 'host': {
      const a = p2pAddresses(l)
      const b = l.kind === 'host' ? 'host' : g(l.b)
      const out = [line('plumb', 'p2p-link', g(l.a), b, '--ifname-a', l.a.ifname, '--ifname-b', l.b.ifname, ...opt('--ip-a', a.ipA), ...opt('--ip-b', a.ipB), ...opt('--mac-a', l.a.mac), ...opt('--mac-b', l.b.mac), ...opt('--mtu', l.mtu))]
      if (a.restA.length || l.a.routes.length) out.push(line('plumb', 'set-ip', g(l.a), l.a.ifname, ...a.restA, ...each('--route', l.a.routes), '--replace-gateway'))
      if (l.kind === 'p2p' && (a.restB.length || l.b.routes.length)) out.push(line('plumb', 'set-ip', g(l.b), l.b.ifname, ...a.restB, ...each('--route', l.b.routes), '--replace-gateway'))
      return out
    }
    case 'vxlan':
      return [line('plumb', 'vxlan', l.bridge, '--vni', String(l.vni), '--remote', l.remote.join(','), ...opt('--local', l.local), ...opt('--dev', l.dev), ...opt('--dstport', l.dstport))]
  }
}

export interface LinkOpOptions {
  lab: string
  /** false: record nothing for replay (--no-persist) */
  persist?: boolean
  log?: (line: string) => void
  /** the deploy's netlink handles, shared by its links' ops */
  handles?: HandlePool
}

/**
 * Make one link with plumb's ops. Each op is a transaction of its own; a p2p end's set-ip that
 * fails takes the link away again, so a link is made whole or not at all.
 */
export async function makeLink(l: LabLink, nodes: Map<string, LabNode>, o: LinkOpOptions): Promise<void> {
  const common = { lab: o.lab, ...(o.persist === false ? { persist: false } : {}), ...(o.log ? { log: o.log } : {}), ...(o.handles ? { handles: o.handles } : {}) }
  const g = (e: LabEndpoint): string => guestOf(nodes.get(e.node)!)
  const mtu = l.mtu !== undefined ? { mtu: l.mtu } : {}
  const mac = (e: LabEndpoint): { mac?: string } => (e.mac !== undefined ? { mac: e.mac } : {})
  switch (l.kind) {
    case 'bridge':
      // The lab puts its bridges' firewall rule in place once per bridge (deploy.ts), not once per port.
      await attachVeth({ ...common, guest: g(l.a), bridge: nodes.get(l.b.node)!.runtime, ips: l.a.ips, routes: l.a.routes, ifname: l.a.ifname, hostIfname: l.b.ifname, ...mac(l.a), ...mtu, replaceGateway: true, firewall: false })
      return
    case 'ovs':
      await ovsPort({ ...common, guest: g(l.a), bridge: nodes.get(l.b.node)!.runtime, ips: l.a.ips, routes: l.a.routes, ifname: l.a.ifname, hostIfname: l.b.ifname, ...mac(l.a), ...mtu, replaceGateway: true, ...(l.b.vlan !== undefined ? { tag: l.b.vlan } : {}), ...(l.b.trunks ? { trunks: l.b.trunks } : {}) })
      return
    case 'macvlan':
      await macvlan({ ...common, guest: g(l.a), parent: l.parent, mode: l.mode, ips: l.a.ips, routes: l.a.routes, ifname: l.a.ifname, ...mac(l.a), ...mtu, replaceGateway: true })
      return
    case 'p2p':
    case 'host': {
      const a = p2pAddresses(l)
      await p2pLink({
        ...common,
        a: g(l.a),
        b: l.kind === 'host' ? 'host' : g(l.b),
        ifnameA: l.a.ifname,
        ifnameB: l.b.ifname,
        ...(a.ipA !== undefined ? { ipA: a.ipA } : {}),
        ...(a.ipB !== undefined ? { ipB: a.ipB } : {}),
        ...(l.a.mac !== undefined ? { macA: l.a.mac } : {}),
        ...(l.b.mac !== undefined ? { macB: l.b.mac } : {}),
        ...mtu,
      })
      try {
        if (a.restA.length || l.a.routes.length) await setIp({ ...common, guest: g(l.a), ifname: l.a.ifname, ips: a.restA, routes: l.a.routes, replaceGateway: true })
        if (l.kind === 'p2p' && (a.restB.length || l.b.routes.length)) await setIp({ ...common, guest: g(l.b), ifname: l.b.ifname, ips: a.restB, routes: l.b.routes, replaceGateway: true })
      } catch (err) {
        // The link goes again; the set-ip's error is the one to report, with what was undone.
        const perr = asPlumbError(err)
        const undo = `plumb detach ${g(l.a)} ${l.a.ifname}`
        try {
          await unlink(g(l.a), l.a.ifname, o)
          perr.rolledBack = [...(perr.rolledBack ?? []), undo]
        } catch (e) {
          perr.rolledBack = [...(perr.rolledBack ?? []), `${undo}  (FAILED: ${asPlumbError(e).message})`]
        }
        throw perr
      }
      return
    }
    case 'vxlan':
      throw new Error('vxlan links go through apply-extras') // refused before deploy starts
  }
}

/** Remove a lab link by its guest side (both ends of a veth go together; OVS rows, DHCP clients and firewall rules with it). */
export async function unlink(guest: string, ifname: string, o: { log?: (line: string) => void; handles?: HandlePool } = {}): Promise<void> {
  await detach({ guest, ifname, ...(o.log ? { log: o.log } : {}), ...(o.handles ? { handles: o.handles } : {}) })
}

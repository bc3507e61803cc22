// ls: what plumb made, found from its owner marks on the objects themselves (never a state file).

import { openHandleIn, openHostHandle } from '../kernel/index.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { parseGuestRef, parseMark } from '../parse/index.js'
import type { GuestRef, OwnerMark } from '../parse/index.js'
import { listContainers, resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { readdirSync } from 'node:fs'
import { toGuestRef } from './context.js'
import { isGuestMark } from './detach.js'
import { listRecords, readRecord } from './guest-record.js'
import { namesState } from './names.js'
import type { NamesState } from './names.js'
import { openGuestEtc } from '../guest/etc.js'

export interface LsInterface {
  name: string
  op: string
  kind: string
  mac?: string
  mtu: number
  up: boolean
  peer?: string
  bridge?: string
  parent?: string
  /** p2p-link: the guest (or 'host') holding the other end */
  peerGuest?: string
  /** move-dev: the device's name on the host, which detach gives back */
  origName?: string
  addresses: string[]
  routes: Array<{ dst: string; gw?: string }>
  lease?: unknown
  mark: string
}

export interface LsGuest {
  guest: string
  netns?: string
  /** --net=container:X: whose netns this is */
  sharedWith?: string
  interfaces: LsInterface[]
  /** `plumb sysctl`: each key plumb set, and the value it found (which --del puts back) */
  sysctl?: Array<{ key: string; value: string; found: string }>
  /** `plumb names`: the hostname, /etc/hosts entries and resolv.conf settings plumb made */
  names?: NamesState
}

export interface LsBridge {
  name: string
  /** created by plumb (and deleted by detach/gc when empty) */
  plumbMade: boolean
  ports: string[]
  firewallRule: boolean
  /** plumb's VXLAN ports on it: the overlays it joins */
  overlays?: LsOverlay[]
}

export interface LsOverlay {
  name: string
  vni: number
  dstport: number
  mtu: number
  underlay?: string
  local?: string
  /** the hosts its flood entries point at */
  remotes: string[]
}

export interface LsResult {
  guests: LsGuest[]
  bridges: LsBridge[]
  /** host ends whose guest is gone (gc removes them) */
  orphans: string[]
}

export interface LsOptions {
  guest?: string | GuestRef
  allowHost?: boolean
}

async function guestInterfaces(netns: Netns, guestNs: NetHandle, leases: Map<string, unknown>): Promise<LsInterface[]> {
  const links = await guestNs.getLinks()
  const mine = links.filter((l) => isGuestMark(parseMark(l.alias)))
  if (mine.length === 0) return []
  const [addrs, routes] = await Promise.all([guestNs.getAddrs(), guestNs.getRoutes()])
  return mine.map((l) => {
    const m = parseMark(l.alias)!
    const iface: LsInterface = {
      name: l.name,
      op: m.op,
      kind: l.kind ?? 'device',
      ...(l.mac ? { mac: l.mac } : {}),
      mtu: l.mtu,
      up: l.up,
      ...(m.peer ? { peer: m.peer } : {}),
      ...(m.bridge ? { bridge: m.bridge } : {}),
      ...(m.extra?.parent ? { parent: m.extra.parent } : {}),
      ...(m.extra?.peerGuest ? { peerGuest: m.extra.peerGuest } : {}),
      ...(m.role === 'moved' && m.extra?.orig ? { origName: m.extra.orig } : {}),
      addresses: addrs.filter((a) => a.index === l.index && !(a.family === 6 && a.address.startsWith('fe80:'))).map((a) => `${a.address}/${a.prefix}`),
      routes: routes
        .filter((r) => r.oif === l.index && r.table === 254 && r.protocol !== 'kernel')
        .map((r) => ({ dst: r.dst, ...(r.gateway ? { gw: r.gateway } : {}) })),
      mark: l.alias!,
    }
    const lease = leases.get(`${netns.key}/${l.name}`)
    if (lease) iface.lease = lease
    return iface
  })
}

/** What plumb made in one resolved guest; closes the netns. */
async function describeGuest(netns: Netns, leases: Map<string, unknown>): Promise<LsGuest> {
  const guestNs = netns.isHost ? openHostHandle() : openHandleIn(netns.fd, netns.label)
  try {
    const interfaces = await guestInterfaces(netns, guestNs, leases)
    const record = readRecord(netns)
    const sysctl = Object.entries(record?.sysctl ?? {}).map(([key, e]) => ({ key, value: e.set, found: e.found }))
    const names = record?.names ? guestNames(netns) : undefined
    return {
      guest: netns.label,
      netns: netns.path,
      ...(netns.container?.sharedWith ? { sharedWith: netns.container.sharedWith } : {}),
      interfaces,
      ...(sysctl.length ? { sysctl } : {}),
      ...(names ? { names } : {}),
    }
  } finally {
    guestNs.close()
    netns.close()
  }
}

/** plumb's name edits on a guest, read back from the files' marks (undefined when it has no /etc of its own now). */
function guestNames(netns: Netns): NamesState | undefined {
  let etc
  try {
    etc = openGuestEtc(netns)
  } catch {
    return undefined
  }
  try {
    const n = namesState(netns, etc)
    return n.hostname || n.hosts.length || Object.keys(n.resolv).length ? n : undefined
  } finally {
    etc.close()
  }
}

/** A candidate of the host-wide listing: one that can no longer be resolved is skipped. */
async function inspectGuest(ref: GuestRef, allowHost: boolean, leases: Map<string, unknown>): Promise<LsGuest | undefined> {
  let netns: Netns
  try {
    netns = await resolveGuest(ref, { allowHost })
  } catch {
    return undefined
  }
  // The host's own netns (an `ip netns` plumb runs in, a --net=host container): what plumb made
  // there is listed with the bridges, not as a guest.
  if (netns.isHost) {
    netns.close()
    return undefined
  }
  return describeGuest(netns, leases)
}

async function loadLeases(): Promise<Map<string, unknown>> {
  const map = new Map<string, unknown>()
  try {
    const { listLeases } = await import('../dhcp/index.js')
    for (const l of await listLeases()) map.set(`${(l as { stateKey: string }).stateKey}/${(l as { ifname: string }).ifname}`, l)
  } catch {
    // no DHCP state: nothing to show
  }
  return map
}

export async function ls(opts: LsOptions = {}): Promise<LsResult> {
  const leases = await loadLeases()
  if (opts.guest !== undefined) {
    // A named guest is resolved once, and its errors (not found, not running, host) are the answer.
    const netns = await resolveGuest(toGuestRef(opts.guest), { allowHost: opts.allowHost ?? false })
    return { guests: [await describeGuest(netns, leases)], bridges: [], orphans: [] }
  }
  const hostNs = openHostHandle()
  try {
    const hostLinks = await hostNs.getLinks()
    // Candidate guests: those named by host-end marks, running containers, and ip netns names.
    const candidates = new Map<string, GuestRef>()
    const hostMarks: Array<{ link: LinkInfo; mark: OwnerMark }> = []
    for (const l of hostLinks) {
      const m = parseMark(l.alias)
      if (!m) continue
      hostMarks.push({ link: l, mark: m })
      if (m.role === 'host' && m.guest) {
        try {
          candidates.set(m.guest, parseGuestRef(m.guest, { allowHostWord: true }))
        } catch {
          /* a mark from another version: skip */
        }
      }
    }
    for (const c of await listContainers()) if (c.running) candidates.set(`docker:${c.name}`, { kind: 'container', engine: 'docker', name: c.name })
    for (const name of readNetnsDir()) candidates.set(`netns:${name}`, { kind: 'netns', name })
    // Guests plumb changed without a link of its own (sysctl, names) are known by their records.
    for (const r of listRecords()) {
      if (candidates.has(r.guest)) continue
      try {
        candidates.set(r.guest, parseGuestRef(r.guest))
      } catch {
        /* a record from another version: skip */
      }
    }

    const seenNs = new Set<string>()
    const guests: LsGuest[] = []
    for (const ref of candidates.values()) {
      const g = await inspectGuest(ref, true, leases)
      if (!g || (g.interfaces.length === 0 && !g.sysctl && !g.names)) continue
      // Two names for one netns (a container and its netns path): list it once.
      if (g.netns && seenNs.has(g.netns)) continue
      if (g.netns) seenNs.add(g.netns)
      guests.push(g)
    }
    const fw = await import('../firewall/index.js')
    const rules = await fw.listRuleBridges().catch(() => [])
    const bridges: LsBridge[] = []
    const bridgeNames = new Set<string>()
    for (const { link, mark } of hostMarks) {
      if (mark.role === 'bridge') bridgeNames.add(link.name)
      if ((mark.role === 'host' || mark.role === 'port') && mark.bridge) bridgeNames.add(mark.bridge)
    }
    for (const name of bridgeNames) {
      const br = hostLinks.find((l) => l.name === name)
      if (!br) continue
      const overlays = await overlaysOf(hostNs, hostMarks.filter(({ link, mark }) => mark.op === 'vxlan' && link.master === br.index))
      bridges.push({
        name,
        plumbMade: parseMark(br.alias)?.role === 'bridge',
        ports: hostLinks.filter((l) => l.master === br.index).map((l) => l.name),
        firewallRule: rules.some((r) => r.bridge === name),
        ...(overlays.length ? { overlays } : {}),
      })
    }
    const liveGuests = new Set(guests.map((g) => g.guest))
    const orphans = hostMarks.filter(({ mark }) => mark.role === 'host' && mark.guest && !liveGuests.has(mark.guest)).map(({ link }) => link.name)
    return { guests, bridges, orphans }
  } finally {
    hostNs.close()
  }
}

async function overlaysOf(hostNs: NetHandle, ports: Array<{ link: LinkInfo; mark: OwnerMark }>): Promise<LsOverlay[]> {
  return Promise.all(
    ports.map(async ({ link, mark }) => ({
      name: link.name,
      vni: link.vxlan?.vni ?? Number(mark.extra?.vni),
      dstport: link.vxlan?.port ?? Number(mark.extra?.dstport),
      mtu: link.mtu,
      ...(mark.extra?.underlay ? { underlay: mark.extra.underlay } : {}),
      ...(link.vxlan?.local ? { local: link.vxlan.local } : {}),
      remotes: (await hostNs.getFdb(link.index)).filter((e) => e.mac === '00:00:00:00:00:00' && e.dst).map((e) => e.dst!),
    })),
  )
}

export function formatLs(r: LsResult): string {
  const lines: string[] = []
  if (r.guests.length === 0) lines.push('plumb made nothing here')
  for (const g of r.guests) {
    lines.push(`${g.guest}${g.sharedWith ? ` (shares the netns of ${g.sharedWith})` : ''}`)
    // `ls GUEST` after a detach: say so rather than print a bare name
    if (g.interfaces.length === 0 && !g.sysctl && !g.names) lines.push('  plumb made nothing here')
    for (const i of g.interfaces) {
      const where = i.bridge ? ` bridge ${i.bridge}` : i.parent ? ` parent ${i.parent}` : ''
      const peer = i.peer ? ` peer ${i.peerGuest ? `${i.peerGuest} ` : ''}${i.peer}` : ''
      const orig = i.origName ? ` (host's ${i.origName})` : ''
      lines.push(`  ${i.name.padEnd(8)} ${i.op.padEnd(11)} ${i.up ? 'up  ' : 'down'} ${i.mac ?? ''} mtu ${i.mtu}${peer}${where}${orig}`)
      for (const a of i.addresses) lines.push(`           inet ${a}`)
      for (const rt of i.routes) lines.push(`           route ${rt.dst}${rt.gw ? ` via ${rt.gw}` : ''}`)
      if (i.lease) {
        const l = i.lease as { address?: string; server?: string; leaseTime?: number; expiresAt?: string; client?: string; pid?: number }
        lines.push(`           dhcp ${l.address ?? '?'} from ${l.server ?? '?'} lease ${l.leaseTime ?? '?'}s expires ${l.expiresAt ?? '?'} (${l.client ?? '?'} pid ${l.pid ?? '?'})`)
      }
    }
    for (const k of g.sysctl ?? []) lines.push(`  sysctl   ${k.key}=${k.value} (was ${k.found})`)
    if (g.names?.hostname) lines.push(`  names    hostname ${g.names.hostname}`)
    for (const h of g.names?.hosts ?? []) lines.push(`  names    /etc/hosts ${h.name} -> ${h.address}`)
    const rv = g.names?.resolv
    if (rv?.nameservers) lines.push(`  names    nameserver ${rv.nameservers.join(' ')}`)
    if (rv?.search) lines.push(`  names    search ${rv.search.join(' ')}`)
    if (rv?.options) lines.push(`  names    options ${rv.options.join(' ')}`)
  }
  for (const b of r.bridges) {
    lines.push(`bridge ${b.name}${b.plumbMade ? ' (plumb made it)' : ''}: ports ${b.ports.join(' ') || '-'}${b.firewallRule ? '; ACCEPT rule in the firewall' : ''}`)
    for (const o of b.overlays ?? []) lines.push(`  vxlan ${o.name} vni ${o.vni} dstport ${o.dstport} mtu ${o.mtu}${o.underlay ? ` underlay ${o.underlay}` : ''}${o.local ? ` local ${o.local}` : ''} remotes ${o.remotes.join(',') || '-'}`)
  }
  if (r.orphans.length) lines.push(`orphaned host ends (plumb gc removes them): ${r.orphans.join(' ')}`)
  return lines.join('\n')
}

/** The names under /run/netns (sync: a tiny directory, and node:fs/promises stays off the CLI's start-up). */
function readNetnsDir(): string[] {
  try {
    return readdirSync('/run/netns')
  } catch {
    return []
  }
}

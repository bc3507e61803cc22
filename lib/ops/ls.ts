// ls: what plumb made, found from its owner marks on the objects themselves (never a state file).
// A guest whose engine does not answer is shown as "state unknown", never as an orphan.

import { openHandleIn, openHostHandle } from '../kernel/index.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { isGuestMark, parseGuestRef, parseMark, ruleKey } from '../parse/index.js'
import type { GuestRef, OwnerMark, RuleMark } from '../parse/index.js'
import { guestProbe, listContainers, resolveGuest } from '../guest/index.js'
import type { GuestVerdict, Netns } from '../guest/index.js'
import { readdirSync } from 'node:fs'
import { PlumbError, asPlumbError } from '../errors.js'
import { aliveElsewhere, aliveReason } from './liveness.js'
import { toGuestRef } from './context.js'
import { readMarks } from './firewall.js'
import { listRecords, readRecord } from './guest-record.js'
import { isLeaseOf } from './lease.js'
import type { LeaseState } from '../dhcp/index.js'
import { namesState } from './guest-names.js'
import type { NamesState } from './guest-names.js'
import { openGuestEtc } from '../guest/etc.js'
import { recordedContainer } from './persist.js'
import { recordedInterfaces } from '../watch/record.js'
import { loadRecord, recordPath } from '../watch/store.js'

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
  /** the lab (`plumb lab deploy`) that made it */
  lab?: string
  /** move-dev: the device's name on the host, which detach gives back */
  origName?: string
  /** an OVS port: its access VLAN, as OVS has it */
  tag?: number
  /** an OVS port: its trunk VLANs, as OVS has them */
  trunks?: number[]
  /** made by the CNI plugin: the attachment's container id and CNI_IFNAME */
  cni?: { containerId: string; ifname: string }
  addresses: string[]
  routes: Array<{ dst: string; gw?: string }>
  lease?: unknown
  /** in the container's replay record: a restart brings it back (`plumb replay`, `plumb watch`) */
  recorded?: boolean
  mark: string
}

/** A container's replay record, as ls shows it. */
export interface LsRecord {
  file: string
  /** its entries' ops, in order */
  ops: string[]
  /** interfaces the record makes that the container does not have now (a p2p link waiting for its peer, say): a replay makes them */
  missing?: string[]
  /** the record could not be read: why (it is skipped by replay, never fatal) */
  error?: string
}

export interface LsGuest {
  guest: string
  /**
   * 'there': read from its netns. 'unknown': plumb could not ask whether it is still there (its
   * engine is down or hung): `reason` says why, `hostEnds` what plumb sees of it on the host.
   */
  state: 'there' | 'unknown'
  reason?: string
  netns?: string
  /** --net=container:X: whose netns this is */
  sharedWith?: string
  /** other names of the same netns: a container sharing it, an ip netns name or symlink (pipework's /var/run/netns/PID) */
  alsoKnownAs?: string[]
  interfaces: LsInterface[]
  /** `plumb sysctl`: each key plumb set, and the value it found (which --del puts back) */
  sysctl?: Array<{ key: string; value: string; found: string }>
  /** `plumb names`: the hostname, /etc/hosts entries and resolv.conf settings plumb made */
  names?: NamesState
  /** state 'unknown': plumb's host ends naming this guest (gc keeps them) */
  hostEnds?: string[]
  /** `plumb expose`: the guest's published ports */
  exposes: LsExpose[]
  /** a container's replay record (lib/watch), when it has one */
  record?: LsRecord
}

/** A published port (plumb expose). */
export interface LsExpose {
  proto: 'tcp' | 'udp'
  /** '' for every host address */
  hostIp: string
  hostPort: number
  /** guest ADDR:PORT */
  to: string
  ifname?: string
  /** the host port was chosen by plumb */
  auto: boolean
}

/** plumb masquerade: outbound NAT of a bridge's subnets or a CIDR. */
export interface LsMasquerade {
  source: string
  bridge?: string
  out?: string
}

/** plumb isolate: a bridge whose guest ports are isolated, and the pairs let through. */
export interface LsIsolate {
  bridge: string
  allow: Array<[string, string]>
}

export interface LsBridge {
  name: string
  type: 'linux' | 'ovs'
  /** created by plumb (and deleted by detach/gc when empty): the alias mark, or external_ids plumb-owner on OVS */
  plumbMade: boolean
  /** its ports (an OVS bridge's own local port left out) */
  ports: string[]
  /** Linux bridges: plumb's ACCEPT rule is in the firewall (absent when the firewall could not be read) */
  firewallRule?: boolean
  /** OVS bridges: the VLAN settings of plumb's ports */
  vlans?: Array<{ port: string; tag?: number; trunks?: number[] }>
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
  /** plumb masquerade and plumb isolate in force */
  masquerades: LsMasquerade[]
  isolates: LsIsolate[]
  /** what could not be read, and so is not shown (a container list, OVS, the firewall) */
  warnings: string[]
}

export interface LsOptions {
  guest?: string | GuestRef
  allowHost?: boolean
}

type OvsBridgeInfo = Awaited<ReturnType<typeof import('../ovs/index.js')['listBridges']>>[number]

type PortVlans = Map<string, { tag?: number; trunks: number[] }>

/** What a guest's interfaces need from outside its netns: leases (by state key) and OVS's VLANs (by port, asked only for a guest with an OVS port). */
interface Extras {
  leases: Map<string, unknown>
  ovsPorts: () => Promise<PortVlans>
  /** plumb's firewall marks (its published ports) */
  marks: RuleMark[]
}

async function guestInterfaces(netns: Netns, keys: string[], guestNs: NetHandle, x: Extras): Promise<LsInterface[]> {
  const links = await guestNs.getLinks()
  const mine = links.filter((l) => isGuestMark(parseMark(l.alias)))
  if (mine.length === 0) return []
  const onOvs = mine.some((l) => parseMark(l.alias)!.op === 'ovs-port')
  const [addrs, routes, ovsPorts] = await Promise.all([guestNs.getAddrs(), guestNs.getRoutes(), onOvs ? x.ovsPorts() : undefined])
  return mine.map((l) => {
    const m = parseMark(l.alias)!
    const port = m.op === 'ovs-port' && m.peer ? ovsPorts?.get(m.peer) : undefined
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
      ...(m.extra?.lab ? { lab: m.extra.lab } : {}),
      ...(m.role === 'moved' && m.extra?.orig ? { origName: m.extra.orig } : {}),
      ...(port?.tag !== undefined ? { tag: port.tag } : {}),
      ...(port?.trunks.length ? { trunks: port.trunks } : {}),
      ...(m.extra?.cni && m.extra.cniif ? { cni: { containerId: m.extra.cni, ifname: m.extra.cniif } } : {}),
      addresses: addrs.filter((a) => a.index === l.index && !(a.family === 6 && a.address.startsWith('fe80:'))).map((a) => `${a.address}/${a.prefix}`),
      routes: routes
        .filter((r) => r.oif === l.index && r.table === 254 && r.protocol !== 'kernel')
        .map((r) => ({ dst: r.dst, ...(r.gateway ? { gw: r.gateway } : {}) })),
      mark: l.alias!,
    }
    // not a lease of an older netns under the same key
    const lease = keys.map((k) => x.leases.get(`${k}/${l.name}`)).find((v) => v !== undefined && isLeaseOf(v as LeaseState, netns))
    if (lease) iface.lease = lease
    return iface
  })
}

/** What plumb made in one resolved guest (`others`: more names of the same netns); closes the netns. */
async function describeGuest(netns: Netns, x: Extras, others: Netns[] = []): Promise<LsGuest> {
  const guestNs = netns.isHost ? openHostHandle() : openHandleIn(netns.fd, netns.label)
  try {
    const interfaces = await guestInterfaces(netns, [netns.key, ...others.map((o) => o.key)], guestNs, x)
    const replay = replayRecordOf(netns, interfaces)
    const record = readRecord(netns)
    const sysctl = Object.entries(record?.sysctl ?? {}).map(([key, e]) => ({ key, value: e.set, found: e.found }))
    const names = record?.names ? guestNames(netns) : undefined
    return {
      guest: netns.label,
      state: 'there',
      netns: netns.path,
      ...(netns.container?.sharedWith ? { sharedWith: netns.container.sharedWith } : {}),
      ...(others.length ? { alsoKnownAs: others.map((o) => o.label) } : {}),
      interfaces,
      ...(sysctl.length ? { sysctl } : {}),
      ...(names ? { names } : {}),
      exposes: exposesOf(x.marks, netns.label),
      ...(replay ? { record: replay } : {}),
    }
  } finally {
    guestNs.close()
    netns.close()
  }
}

/** A container's replay record, its interfaces marked `recorded` in `interfaces`. */
function replayRecordOf(netns: Netns, interfaces: LsInterface[]): LsRecord | undefined {
  const c = recordedContainer(netns)
  if (!c) return undefined
  let r
  try {
    r = loadRecord(c.engine, c.id)
  } catch (err) {
    return { file: recordPath(c.engine, c.id), ops: [], error: (err as Error).message }
  }
  if (!r) return undefined
  const made = recordedInterfaces(r)
  for (const i of interfaces) if (made.has(i.name)) i.recorded = true
  const missing = [...made.keys()].filter((n) => !interfaces.some((i) => i.name === n))
  return { file: recordPath(c.engine, c.id), ops: r.entries.map((e) => e.op), ...(missing.length ? { missing } : {}) }
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

/** How telling a name of a netns is: a container (its owner before one sharing it), an ip netns name, a pid, a path. */
function rank(n: Netns): number {
  if (n.container) return n.container.sharedWith ? 1 : 0
  return { netns: 2, pid: 3, path: 4 }[n.ref.kind as 'netns' | 'pid' | 'path'] ?? 5
}

async function loadLeases(warnings: string[]): Promise<Map<string, unknown>> {
  const map = new Map<string, unknown>()
  try {
    const { listLeases } = await import('../dhcp/index.js')
    for (const l of await listLeases()) map.set(`${(l as { stateKey: string }).stateKey}/${(l as { ifname: string }).ifname}`, l)
  } catch (err) {
    warnings.push(`could not read the DHCP state, so leases are not shown: ${asPlumbError(err).message}`)
  }
  return map
}

/** Every OVS bridge, or none when OVS is not on this host; a warning when it could not be asked. */
async function loadOvs(warnings: string[]): Promise<OvsBridgeInfo[]> {
  const ovs = await import('../ovs/index.js')
  try {
    return await ovs.listBridges()
  } catch (err) {
    if (!ovs.ovsNotHere(err)) warnings.push(`could not read Open vSwitch, so its bridges, ports and VLANs are not shown: ${asPlumbError(err).message}`)
    return []
  }
}

function portsByName(bridges: OvsBridgeInfo[]): PortVlans {
  return new Map(bridges.flatMap((b) => b.ports.map((p) => [p.name, { ...(p.tag !== undefined ? { tag: p.tag } : {}), trunks: p.trunks }] as const)))
}

export async function ls(opts: LsOptions = {}): Promise<LsResult> {
  const warnings: string[] = []
  const leases = await loadLeases(warnings)
  if (opts.guest !== undefined) {
    // A named guest is resolved once, and its errors (not found, not running, host) are the answer.
    const netns = await resolveGuest(toGuestRef(opts.guest), { allowHost: opts.allowHost ?? false })
    const guest = await describeGuest(netns, { leases, ovsPorts: async () => portsByName(await loadOvs(warnings)), marks: (await loadMarks(warnings)) ?? [] })
    return { guests: [guest], bridges: [], orphans: [], masquerades: [], isolates: [], warnings }
  }
  // Docker's list, OVS's bridges and the firewall's marks are asked first: their answers come
  // over sockets (or a spawn) while the host's links are read (a synchronous netlink dump) and
  // parsed. Each keeps its warnings apart, so that they are told in one order whichever answers first.
  const containers = listContainers().then(
    (list) => ({ list }),
    (err: unknown) => ({ err }),
  )
  const ovsWarnings: string[] = []
  const marksWarnings: string[] = []
  const ovsBridgesRead = loadOvs(ovsWarnings)
  const rulesRead = loadMarks(marksWarnings)
  // handled where awaited below; an early throw must not leave them unhandled
  ovsBridgesRead.catch(() => undefined)
  rulesRead.catch(() => undefined)
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
    const probe = guestProbe()
    const listed = await containers
    if ('err' in listed) {
      probe.engineDown('docker', listed.err)
      warnings.push(`could not list Docker's containers, so those plumb reached without a host end (macvlan, vlan, move-dev) are not shown: ${asPlumbError(listed.err).message}`)
    } else {
      for (const c of listed.list) if (c.running) candidates.set(`docker:${c.name}`, { kind: 'container', engine: 'docker', name: c.name })
    }
    for (const name of readNetnsDir(warnings)) candidates.set(`netns:${name}`, { kind: 'netns', name })
    // Guests plumb changed without a link of its own (sysctl, names) are known by their records.
    for (const r of listRecords()) {
      if (candidates.has(r.guest)) continue
      try {
        candidates.set(r.guest, parseGuestRef(r.guest))
      } catch {
        /* a record from another version: skip */
      }
    }

    const [ovsBridges, rules] = await Promise.all([ovsBridgesRead, rulesRead])
    warnings.push(...ovsWarnings, ...marksWarnings)
    const marks = rules ?? []
    // Guests plumb published ports for, with no link of plumb's (--to an address of their own).
    for (const m of marks) {
      if (m.op !== 'expose' || candidates.has(m.guest)) continue
      try {
        candidates.set(m.guest, parseGuestRef(m.guest))
      } catch {
        /* a mark from another version: skip */
      }
    }
    const vlans = portsByName(ovsBridges)
    const extras: Extras = { leases, ovsPorts: async () => vlans, marks }

    // Every candidate resolved, then grouped by netns identity (st_dev, st_ino): one netns is one
    // guest, shown under its most telling name, whatever else names it.
    const states = new Map<string, GuestVerdict | { state: 'found' }>()
    const groups = new Map<string, Netns[]>()
    const alive = aliveElsewhere(hostNs)
    // Asked all at once (an engine's inspect each, a netns opened each: the records of containers
    // removed without a detach would otherwise cost a round trip each, one after the other), then
    // taken in the candidates' order.
    const probed = await Promise.all(
      [...candidates].map(async ([label, ref]) => {
        const s = await probe(ref)
        // a container its engine does not have, with a process still in the netns of what plumb made for it (./liveness.ts)
        const live = s.state === 'gone' && ref.kind === 'container' ? await alive(label) : undefined
        return { label, s, live }
      }),
    )
    for (const { label, s, live } of probed) {
      if (live !== undefined) {
        const reason = aliveReason((s as { reason: string }).reason, label, live)
        states.set(label, { state: 'unknown', reason, error: new PlumbError('FAILED', reason) })
        continue
      }
      if (s.state !== 'found') {
        states.set(label, s)
        continue
      }
      states.set(label, { state: 'found' })
      const id = `${s.netns.dev}:${s.netns.ino}`
      groups.set(id, [...(groups.get(id) ?? []), s.netns])
    }
    const guests: LsGuest[] = []
    for (const names of groups.values()) {
      const [best, ...others] = [...names].sort((a, b) => rank(a) - rank(b))
      // The host's own netns (an `ip netns` plumb runs in, a --net=host container): what plumb
      // made there is listed with the bridges, not as a guest.
      if (best!.isHost) {
        for (const n of names) n.close()
        continue
      }
      const g = await describeGuest(best!, extras, others)
      for (const o of others) o.close()
      if (g.interfaces.length > 0 || g.sysctl || g.names || g.exposes.length || g.record) guests.push(g)
    }
    for (const [label, s] of states) {
      if (s.state !== 'unknown') continue
      const hostEnds = hostMarks.filter(({ mark }) => mark.role === 'host' && mark.guest === label).map(({ link }) => link.name)
      guests.push({ guest: label, state: 'unknown', reason: s.reason, interfaces: [], hostEnds, exposes: exposesOf(marks, label) })
    }

    const bridges: LsBridge[] = []
    const linuxNames = new Set<string>()
    const ovsNames = new Set(ovsBridges.filter((b) => b.externalIds['plumb-owner'] === 'plumb').map((b) => b.name))
    for (const { link, mark } of hostMarks) {
      if (mark.role === 'bridge') linuxNames.add(link.name)
      if ((mark.role === 'host' || mark.role === 'port') && mark.bridge) (mark.op === 'ovs-port' ? ovsNames : linuxNames).add(mark.bridge)
    }
    for (const name of linuxNames) {
      const br = hostLinks.find((l) => l.name === name)
      if (br?.kind !== 'bridge') continue
      const overlays = await overlaysOf(hostNs, hostMarks.filter(({ link, mark }) => mark.op === 'vxlan' && link.master === br.index))
      bridges.push({
        name,
        type: 'linux',
        plumbMade: parseMark(br.alias)?.role === 'bridge',
        ports: hostLinks.filter((l) => l.master === br.index).map((l) => l.name),
        ...(rules ? { firewallRule: rules.some((m) => m.op === 'bridge' && m.bridge === name) } : {}),
        ...(overlays.length ? { overlays } : {}),
      })
    }
    for (const name of ovsNames) {
      const b = ovsBridges.find((x) => x.name === name)
      if (!b) continue
      const mine = b.ports.filter((p) => p.externalIds['plumb-owner'] === 'plumb')
      bridges.push({
        name,
        type: 'ovs',
        plumbMade: b.externalIds['plumb-owner'] === 'plumb',
        ports: b.ports.map((p) => p.name),
        vlans: mine.map((p) => ({ port: p.name, ...(p.tag !== undefined ? { tag: p.tag } : {}), ...(p.trunks.length ? { trunks: p.trunks } : {}) })),
      })
    }
    const orphans = hostMarks.filter(({ mark }) => mark.role === 'host' && mark.guest && states.get(mark.guest)?.state === 'gone').map(({ link }) => link.name)
    return { guests, bridges, orphans, masquerades: masqueradesOf(marks), isolates: isolatesOf(marks), warnings }
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

/** plumb's firewall marks (both families), or undefined (and a warning) when they could not be read. */
async function loadMarks(warnings: string[]): Promise<RuleMark[] | undefined> {
  const { marks, read } = await readMarks()
  if (!read) {
    warnings.push("could not read the firewall (iptables-save failed), so plumb's rules and published ports are not shown")
    return undefined
  }
  return marks
}

function exposesOf(marks: RuleMark[], guest: string): LsExpose[] {
  const seen = new Set<string>()
  const out: LsExpose[] = []
  for (const m of marks) {
    if (m.op !== 'expose' || m.guest !== guest || seen.has(ruleKey(m))) continue
    seen.add(ruleKey(m))
    out.push({ proto: m.proto, hostIp: m.hostIp, hostPort: m.hostPort, to: m.to, ...(m.ifname ? { ifname: m.ifname } : {}), auto: m.auto })
  }
  return out.sort((a, b) => a.hostPort - b.hostPort)
}

function masqueradesOf(marks: RuleMark[]): LsMasquerade[] {
  const out = new Map<string, LsMasquerade>()
  for (const m of marks) if (m.op === 'masquerade') out.set(ruleKey(m), { source: m.src, ...(m.bridge ? { bridge: m.bridge } : {}), ...(m.out ? { out: m.out } : {}) })
  return [...out.values()]
}

function isolatesOf(marks: RuleMark[]): LsIsolate[] {
  const out = new Map<string, LsIsolate>()
  for (const m of marks) if (m.op === 'isolate') out.set(m.bridge, { bridge: m.bridge, allow: [] })
  for (const m of marks) {
    if (m.op !== 'allow') continue
    const iso = out.get(m.bridge) ?? { bridge: m.bridge, allow: [] }
    out.set(m.bridge, iso)
    if (!iso.allow.some(([a, b]) => a === m.a && b === m.b)) iso.allow.push([m.a, m.b])
  }
  return [...out.values()]
}

const vlanText = (v: { tag?: number; trunks?: number[] }): string => `${v.tag !== undefined ? ` tag ${v.tag}` : ''}${v.trunks?.length ? ` trunks ${v.trunks.join(',')}` : ''}`

export function formatLs(r: LsResult): string {
  const lines: string[] = []
  if (r.guests.length === 0) lines.push('plumb made nothing here')
  for (const g of r.guests) {
    if (g.state === 'unknown') {
      lines.push(`${g.guest}: state unknown (${g.reason ?? '?'})${g.hostEnds?.length ? `; its host ends ${g.hostEnds.join(' ')} are kept` : ''}`)
      continue
    }
    const aka = g.alsoKnownAs?.length ? ` (also ${g.alsoKnownAs.join(', ')})` : ''
    lines.push(`${g.guest}${g.sharedWith ? ` (shares the netns of ${g.sharedWith})` : ''}${aka}`)
    // `ls GUEST` after a detach: say so rather than print a bare name
    if (g.interfaces.length === 0 && !g.sysctl && !g.names && g.exposes.length === 0 && !g.record) lines.push('  plumb made nothing here')
    for (const i of g.interfaces) {
      const where = i.bridge ? ` bridge ${i.bridge}` : i.parent ? ` parent ${i.parent}` : ''
      const peer = i.peer ? ` peer ${i.peerGuest ? `${i.peerGuest} ` : ''}${i.peer}` : ''
      const orig = `${i.origName ? ` (host's ${i.origName})` : ''}${i.lab ? ` [lab ${i.lab}]` : ''}${i.recorded ? ' [recorded]' : ''}`
      const cni = i.cni ? ` cni ${i.cni.containerId.slice(0, 12)}/${i.cni.ifname}` : ''
      lines.push(`  ${i.name.padEnd(8)} ${i.op.padEnd(11)} ${i.up ? 'up  ' : 'down'} ${i.mac ?? ''} mtu ${i.mtu}${peer}${where}${vlanText(i)}${orig}${cni}`)
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
    for (const x of g.exposes) lines.push(`  expose   ${x.hostIp || '0.0.0.0'}:${x.hostPort}/${x.proto} -> ${x.to}${x.auto ? ' (host port chosen by plumb)' : ''}`)
    const rec = g.record
    if (rec?.error) lines.push(`  record   ${rec.error}`)
    else if (rec) lines.push(`  record   ${rec.ops.join(', ')} (replayed on restart; ${rec.file})${rec.missing ? `; not here now: ${rec.missing.join(' ')}` : ''}`)
  }
  for (const b of r.bridges) {
    const made = b.plumbMade ? ' (plumb made it)' : ''
    if (b.type === 'ovs') {
      const ports = b.ports.map((p) => {
        const v = b.vlans?.find((x) => x.port === p)
        return v && (v.tag !== undefined || v.trunks) ? `${p} (${vlanText(v).trim()})` : p
      })
      lines.push(`OVS bridge ${b.name}${made}: ports ${ports.join(' ') || '-'}`)
    } else {
      lines.push(`bridge ${b.name}${made}: ports ${b.ports.join(' ') || '-'}${b.firewallRule ? '; ACCEPT rule in the firewall' : ''}`)
      for (const o of b.overlays ?? []) lines.push(`  vxlan ${o.name} vni ${o.vni} dstport ${o.dstport} mtu ${o.mtu}${o.underlay ? ` underlay ${o.underlay}` : ''}${o.local ? ` local ${o.local}` : ''} remotes ${o.remotes.join(',') || '-'}`)
    }
  }
  for (const m of r.masquerades ?? []) lines.push(`masquerade ${m.source}${m.bridge && m.source !== m.bridge ? ` (bridge ${m.bridge})` : ''} out ${m.out ?? 'any other interface'}`)
  for (const i of r.isolates ?? []) lines.push(`isolate  bridge ${i.bridge}${i.allow.length ? `; allowed: ${i.allow.map(([a, b]) => `${a},${b}`).join(' ')}` : ''}`)
  if (r.orphans.length) lines.push(`orphaned host ends (plumb gc removes them): ${r.orphans.join(' ')}`)
  return lines.join('\n')
}

/** The names under /run/netns (sync: a tiny directory, and node:fs/promises stays off the CLI's start-up). */
function readNetnsDir(warnings: string[]): string[] {
  try {
    return readdirSync('/run/netns')
  } catch (err) {
    // no directory: no ip netns was ever made here
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') warnings.push(`could not read /run/netns, so ip netns guests without a host end are not shown: ${(err as Error).message}`)
    return []
  }
}

// A container's replay record, pure: its format (versioned), parsing and validation, and the
// edits ops make to it (what an op did goes in; what detach, --del and --release undo comes out).
// No I/O here: lib/watch/store.ts reads and writes the files, lib/ops/persist.ts is how ops edit.
//
// A record is intent, not state: each entry is one op with the options it ran with, resolved
// (the guest ifname it took, the host end's name, the MAC it ended up with), so that replaying
// it on a fresh netns makes the same thing under the same names (a DHCP lease and the peers'
// ARP caches stay valid). The marks on the kernel's objects stay the truth of what exists now.

import { parseIpSpec, parsePortSpecs, parseRouteSpec, parseSysctlKey } from '../parse/index.js'
import type { PortMapping } from '../parse/index.js'
import type { EngineName } from '../guest/types.js'

/**
 * The format's version. A reader takes every version up to its own (an older one is migrated
 * on reading: MIGRATIONS), and reports a newer one (written by a newer plumb) as unreadable
 * instead of guessing; entries' args may gain optional fields without a new version.
 */
export const RECORD_VERSION = 1

/** The ops a record can hold: the per-container ones. (vxlan, masquerade, isolate are host-side; CNI attachments are the runtime's.) */
export const RECORDED_OPS = ['attach-veth', 'ovs-port', 'macvlan', 'vlan', 'p2p-link', 'move-dev', 'set-ip', 'dhcp', 'sysctl', 'names', 'expose'] as const
export type RecordedOp = (typeof RECORDED_OPS)[number]

/** The ops that make an interface (its `ifname` is the slot: a second op on the same name replaces the entry). */
const LINK_OPS: ReadonlySet<string> = new Set(['attach-veth', 'ovs-port', 'macvlan', 'vlan', 'p2p-link', 'move-dev'])

export interface RecordEntry {
  op: RecordedOp
  /** the op's library options as it ran (lib/ops/*Options), without the guest and the run's own (dryRun, log, handles) */
  args: Record<string, unknown>
  /** when it was recorded (ISO 8601) */
  at?: string
}

export interface ContainerRecord {
  v: typeof RECORD_VERSION
  engine: EngineName
  /** the full container id: the key (a name can change, the id never does) */
  id: string
  /** the name when last written, for messages */
  name?: string
  /** in the order the ops ran: replay re-applies them in this order */
  entries: RecordEntry[]
}

/** A record file that is not a readable record: reported and skipped, never fatal. */
export class RecordError extends Error {
  constructor(
    readonly file: string,
    why: string,
  ) {
    super(`record ${file} is unreadable: ${why}`)
    this.name = 'RecordError'
  }
}

/** The guest ref a record's ops use for a container: its full id, which a restart keeps. */
export const containerRef = (engine: EngineName, id: string): string => `${engine}:${id}`

/** The container a containerRef names, or undefined for any other guest ref (`host`, netns:X ...). */
export function parseContainerRef(ref: string): { engine: EngineName; id: string } | undefined {
  const m = /^(docker|podman):([0-9a-f]{12,64})$/.exec(ref)
  return m ? { engine: m[1] as EngineName, id: m[2]! } : undefined
}

/** `docker-<id>.json`: the file of a container's record. */
export const recordFileName = (engine: EngineName, id: string): string => `${engine}-${id}.json`

/** The container a record file name stands for, or undefined for any other file. */
export function parseRecordFileName(name: string): { engine: EngineName; id: string } | undefined {
  const m = /^(docker|podman)-([0-9a-f]{12,64})\.json$/.exec(name)
  return m ? { engine: m[1] as EngineName, id: m[2]! } : undefined
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

/**
 * Upgrades from each older version to the next, by the version they read. None yet: version 1 is
 * the first. A future v2 adds `1: (r) => ({ ...r, v: 2, ... })` here and the v1 files on disk
 * keep replaying after the upgrade (and are rewritten as v2 by the next op that edits them).
 */
const MIGRATIONS: Record<number, (r: Record<string, unknown>) => Record<string, unknown>> = {}

/** Parse and validate a record file's text (`file` names it in errors); an older version is migrated. */
export function parseRecord(text: string, file: string): ContainerRecord {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new RecordError(file, `not JSON (${(err as Error).message})`)
  }
  if (!isObject(raw)) throw new RecordError(file, 'not a JSON object')
  let r = raw
  if (typeof r.v !== 'number' || !Number.isInteger(r.v) || r.v < 1) throw new RecordError(file, `no version field "v" (a positive integer), found ${JSON.stringify(r.v)}`)
  if (r.v > RECORD_VERSION) throw new RecordError(file, `version ${r.v} was written by a newer plumb (this one reads up to ${RECORD_VERSION}); it is left as it is`)
  while ((r.v as number) < RECORD_VERSION) {
    const up = MIGRATIONS[r.v as number]
    if (!up) throw new RecordError(file, `version ${r.v} is not one this plumb can migrate`)
    r = up(r)
  }
  if (r.engine !== 'docker' && r.engine !== 'podman') throw new RecordError(file, `"engine" is ${JSON.stringify(r.engine)}, not docker or podman`)
  if (typeof r.id !== 'string' || !/^[0-9a-f]{12,64}$/.test(r.id)) throw new RecordError(file, `"id" is ${JSON.stringify(r.id)}, not a container id`)
  if (r.name !== undefined && typeof r.name !== 'string') throw new RecordError(file, '"name" is not a string')
  if (!Array.isArray(r.entries)) throw new RecordError(file, '"entries" is not a list')
  const entries = r.entries.map((e, i): RecordEntry => {
    if (!isObject(e)) throw new RecordError(file, `entries[${i}] is not an object`)
    if (typeof e.op !== 'string' || !(RECORDED_OPS as readonly string[]).includes(e.op)) throw new RecordError(file, `entries[${i}].op ${JSON.stringify(e.op)} is not an op plumb records`)
    if (!isObject(e.args)) throw new RecordError(file, `entries[${i}].args is not an object`)
    return { op: e.op as RecordedOp, args: e.args, ...(typeof e.at === 'string' ? { at: e.at } : {}) }
  })
  return { v: RECORD_VERSION, engine: r.engine, id: r.id, ...(typeof r.name === 'string' ? { name: r.name } : {}), entries }
}

export function newContainerRecord(engine: EngineName, id: string, name?: string): ContainerRecord {
  return { v: RECORD_VERSION, engine, id, ...(name ? { name } : {}), entries: [] }
}

const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined)
const strs = (x: unknown): string[] => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : [])

/** Which side of a p2p entry this container is: 'a', 'b', or undefined when it is neither. */
export function p2pSide(e: RecordEntry, self: string): 'a' | 'b' | undefined {
  if (e.op !== 'p2p-link') return undefined
  if (e.args.a === self) return 'a'
  if (e.args.b === self) return 'b'
  return undefined
}

/** The guest-side interface an entry is about in this container (`self`: containerRef), if any. */
export function entryIfname(e: RecordEntry, self: string): string | undefined {
  if (e.op === 'p2p-link') {
    const side = p2pSide(e, self)
    return side === 'a' ? str(e.args.ifnameA) : side === 'b' ? str(e.args.ifnameB) : undefined
  }
  return str(e.args.ifname)
}

/** The other side of a p2p entry: a guest ref (another container's, `host`, netns:X ...). */
export function p2pPeer(e: RecordEntry, self: string): { ref: string; ifname?: string } | undefined {
  const side = p2pSide(e, self)
  if (!side) return undefined
  const ref = str(side === 'a' ? e.args.b : e.args.a)
  const ifname = str(side === 'a' ? e.args.ifnameB : e.args.ifnameA)
  return ref === undefined ? undefined : { ref, ...(ifname !== undefined ? { ifname } : {}) }
}

/** The interfaces the record makes, with the op that makes each (ls shows them as recorded). */
export function recordedInterfaces(r: ContainerRecord): Map<string, RecordedOp> {
  const self = containerRef(r.engine, r.id)
  const out = new Map<string, RecordedOp>()
  for (const e of r.entries) {
    const ifname = LINK_OPS.has(e.op) ? entryIfname(e, self) : undefined
    if (ifname !== undefined) out.set(ifname, e.op)
  }
  return out
}

/** The Linux or OVS bridges the record's entries put ports on (gc looks at them once the container is gone). */
export function recordedBridges(r: ContainerRecord): string[] {
  return [...new Set(r.entries.flatMap((e) => (e.op === 'attach-veth' || e.op === 'ovs-port') && str(e.args.bridge) ? [str(e.args.bridge)!] : []))]
}

// --- the edits ---------------------------------------------------------------------------------

/**
 * A link op made `entry`'s interface: its entry replaces one for the same interface (kept in
 * its place, so what depends on it still comes after it) or joins the end.
 */
export function putLink(r: ContainerRecord, entry: RecordEntry): void {
  const self = containerRef(r.engine, r.id)
  const ifname = entryIfname(entry, self)
  const at = r.entries.findIndex((e) => LINK_OPS.has(e.op) && entryIfname(e, self) === ifname)
  if (at >= 0) r.entries[at] = entry
  else r.entries.push(entry)
}

/** A set-ip: its addresses and routes join those recorded for the interface (one set-ip entry per interface, at its first place). */
export function addSetIp(r: ContainerRecord, entry: RecordEntry): void {
  const ifname = str(entry.args.ifname)
  const prev = r.entries.find((e) => e.op === 'set-ip' && str(e.args.ifname) === ifname)
  if (!prev) {
    r.entries.push(entry)
    return
  }
  const union = (a: string[], b: string[]): string[] => [...a, ...b.filter((x) => !a.includes(x))]
  prev.args = { ...prev.args, ...entry.args, ips: union(strs(prev.args.ips), strs(entry.args.ips)), routes: union(strs(prev.args.routes), strs(entry.args.routes)) }
  if (entry.at) prev.at = entry.at
}

const sameAddress = (spec: string, gone: Array<{ address: string; prefix: number }>): boolean => {
  const ip = parseIpSpec(spec)
  return ip.kind === 'static' && gone.some((g) => g.address === ip.address && g.prefix === ip.prefix)
}
const sameRoute = (spec: string, gone: Array<{ dst: string; gateway?: string }>): boolean => {
  const rt = parseRouteSpec(spec)
  return gone.some((g) => g.dst === rt.dst && (g.gateway === undefined || g.gateway === rt.gateway))
}

/**
 * set-ip --del: the addresses (with their @gateway) and routes removed from an interface leave
 * every entry that would put them back: its set-ip entry and the op that made the interface.
 */
export function removeAddresses(r: ContainerRecord, ifname: string, ips: string[], routes: string[]): void {
  const self = containerRef(r.engine, r.id)
  const goneIps = ips.map(parseIpSpec).flatMap((ip) => (ip.kind === 'static' ? [{ address: ip.address, prefix: ip.prefix }] : []))
  const goneRoutes = routes.map(parseRouteSpec).map((rt) => ({ dst: rt.dst, ...(rt.gateway !== undefined ? { gateway: rt.gateway } : {}) }))
  for (const e of r.entries) {
    if (entryIfname(e, self) !== ifname) continue
    if (e.op === 'p2p-link') {
      const key = p2pSide(e, self) === 'a' ? 'ipA' : 'ipB'
      const ip = str(e.args[key])
      if (ip !== undefined && sameAddress(ip, goneIps)) {
        const { [key]: _gone, ...rest } = e.args
        e.args = rest
      }
      continue
    }
    if (Array.isArray(e.args.ips)) e.args = { ...e.args, ips: strs(e.args.ips).filter((s) => s === 'dhcp' || !sameAddress(s, goneIps)) }
    if (Array.isArray(e.args.routes)) e.args = { ...e.args, routes: strs(e.args.routes).filter((s) => !sameRoute(s, goneRoutes)) }
  }
  r.entries = r.entries.filter((e) => !(e.op === 'set-ip' && strs(e.args.ips).length === 0 && strs(e.args.routes).length === 0))
}

/** `plumb dhcp`: one entry per interface (the last options win). */
export function putDhcp(r: ContainerRecord, entry: RecordEntry): void {
  const at = r.entries.findIndex((e) => e.op === 'dhcp' && str(e.args.ifname) === str(entry.args.ifname))
  if (at >= 0) r.entries[at] = entry
  else r.entries.push(entry)
}

/** `dhcp --release`: no client on that interface after a replay, neither its own entry nor a link op's `dhcp` spec. */
export function removeDhcp(r: ContainerRecord, ifname: string): void {
  const self = containerRef(r.engine, r.id)
  r.entries = r.entries.filter((e) => !(e.op === 'dhcp' && str(e.args.ifname) === ifname))
  for (const e of r.entries) {
    if (!LINK_OPS.has(e.op) || entryIfname(e, self) !== ifname || !strs(e.args.ips).includes('dhcp')) continue
    const { dhcp: _opts, ...rest } = e.args
    e.args = { ...rest, ips: strs(e.args.ips).filter((s) => s !== 'dhcp') }
  }
}

/** A recorded setting's key, in sysctl(8)'s dotted form as parseSysctlKey writes it (the ops record them so). */
const sysctlKeyOf = (setting: string): string => (setting.includes('=') ? setting.slice(0, setting.indexOf('=')) : setting)

/**
 * `plumb sysctl KEY=VALUE...`: an entry of its own at the end (a key of an interface comes after
 * the op that makes it), the keys taken out of earlier entries. `settings` are normalised (dotted keys).
 */
export function putSysctl(r: ContainerRecord, settings: string[], at?: string): void {
  removeSysctl(r, settings.map(sysctlKeyOf))
  if (settings.length) r.entries.push({ op: 'sysctl', args: { settings }, ...(at ? { at } : {}) })
}

/** `sysctl --del KEY...` (or every key when `keys` is undefined): those are plumb's no more. */
export function removeSysctl(r: ContainerRecord, keys?: string[]): void {
  for (const e of r.entries) {
    if (e.op !== 'sysctl') continue
    e.args = { ...e.args, settings: keys === undefined ? [] : strs(e.args.settings).filter((s) => !keys.includes(sysctlKeyOf(s))) }
  }
  r.entries = r.entries.filter((e) => !(e.op === 'sysctl' && strs(e.args.settings).length === 0))
}

/** The names options a record keeps, in the NamesOptions spelling. */
const NAME_LISTS = ['addHosts', 'dns', 'dnsSearch', 'dnsOptions'] as const

/** The /etc/hosts name of an --add-host value (NAME:ADDR). */
const hostName = (addHost: string): string => (addHost.includes(':') ? addHost.slice(0, addHost.indexOf(':')) : addHost)

/**
 * `plumb names`: its values at the end, taken out of earlier entries (a hostname, the same
 * /etc/hosts names; the nameservers, search or options given replace the earlier ones, as they
 * do in the guest's resolv.conf).
 */
export function putNames(r: ContainerRecord, args: Record<string, unknown>, at?: string): void {
  removeNames(r, args)
  r.entries.push({ op: 'names', args, ...(at ? { at } : {}) })
}

/**
 * `names --del` with values (`what`, as NamesOptions: a hostname, --add-host entries, whose names
 * go; dns, dnsSearch, dnsOptions, whose whole kind goes) or alone (`what` undefined): those edits
 * are plumb's no more.
 */
export function removeNames(r: ContainerRecord, what?: { hostname?: unknown; addHosts?: unknown; dns?: unknown; dnsSearch?: unknown; dnsOptions?: unknown }): void {
  for (const e of r.entries) {
    if (e.op !== 'names') continue
    if (what === undefined) {
      e.args = {}
      continue
    }
    const next: Record<string, unknown> = { ...e.args }
    if (what.hostname) delete next.hostname
    const gone = strs(what.addHosts).map(hostName)
    if (gone.length) next.addHosts = strs(e.args.addHosts).filter((h) => !gone.includes(hostName(h)))
    for (const k of ['dns', 'dnsSearch', 'dnsOptions'] as const) if (what[k]) delete next[k]
    e.args = next
  }
  r.entries = r.entries.filter((e) => !(e.op === 'names' && e.args.hostname === undefined && NAME_LISTS.every((k) => strs(e.args[k]).length === 0)))
}

/**
 * detach IFNAME: everything recorded about that interface goes (the op that made it, its set-ip
 * and dhcp entries, its sysctl keys). Returns the p2p entries removed: the peer's record holds
 * the same link and forgets it too.
 */
export function removeInterface(r: ContainerRecord, ifname: string): RecordEntry[] {
  const self = containerRef(r.engine, r.id)
  const p2p = r.entries.filter((e) => e.op === 'p2p-link' && entryIfname(e, self) === ifname)
  // its published ports go with it (detach IFNAME unpublishes those DNATed to its addresses)
  const addresses = r.entries
    .filter((e) => entryIfname(e, self) === ifname && e.op !== 'sysctl' && e.op !== 'names' && e.op !== 'expose')
    .flatMap((e) => [...strs(e.args.ips), ...(e.op === 'p2p-link' ? [str(e.args[p2pSide(e, self) === 'a' ? 'ipA' : 'ipB'])] : [])])
    .flatMap((spec) => {
      const ip = spec === undefined || spec === 'dhcp' ? undefined : parseIpSpec(spec)
      return ip?.kind === 'static' ? [ip.address] : []
    })
  r.entries = r.entries.filter((e) => !(e.op === 'expose' && typeof e.args.to === 'string' && addresses.includes(e.args.to)))
  r.entries = r.entries.filter((e) => !(e.op !== 'sysctl' && e.op !== 'names' && entryIfname(e, self) === ifname))
  const keys = r.entries.flatMap((e) => (e.op === 'sysctl' ? strs(e.args.settings).map(sysctlKeyOf) : [])).filter((k) => parseSysctlKey(k).ifname === ifname)
  if (keys.length) removeSysctl(r, keys)
  return p2p
}

/** A p2p link (as its other side recorded it) leaves this record too. */
export function removeP2p(r: ContainerRecord, link: RecordEntry): void {
  r.entries = r.entries.filter((e) => !(e.op === 'p2p-link' && e.args.a === link.args.a && e.args.b === link.args.b && e.args.ifnameA === link.args.ifnameA && e.args.ifnameB === link.args.ifnameB))
}

/** p2p links to a container that no longer exists (`ref`: its containerRef) leave this record. */
export function removeP2pTo(r: ContainerRecord, ref: string): boolean {
  const before = r.entries.length
  r.entries = r.entries.filter((e) => !(e.op === 'p2p-link' && (e.args.a === ref || e.args.b === ref)))
  return r.entries.length !== before
}

/** One published port's identity: a host port is published once, whatever it leads to. */
const hostKey = (m: PortMapping): string => `${m.proto} ${m.hostIp ?? '*'}:${m.hostPort ?? `auto->${m.port}`}`

/**
 * `plumb expose`: the mappings as published (host ports resolved, so a replay takes the same
 * ones), at the end; the same host ports leave earlier entries.
 */
export function putExpose(r: ContainerRecord, args: Record<string, unknown>, at?: string): void {
  const keys = new Set(parsePortSpecs(strs(args.ports)).map(hostKey))
  dropMappings(r, (m) => keys.has(hostKey(m)))
  r.entries.push({ op: 'expose', args, ...(at ? { at } : {}) })
}

/**
 * `expose --del` (`gone` as it was given: a mapping without a host port names whatever host
 * port was chosen for that guest port), or `detach --all` (every one: `gone` undefined).
 */
export function removeExposed(r: ContainerRecord, gone?: PortMapping[]): void {
  dropMappings(r, (m) =>
    gone === undefined ||
    gone.some((g) => g.proto === m.proto && g.port === m.port && (g.hostPort === undefined || g.hostPort === m.hostPort) && (g.hostIp === undefined || g.hostIp === m.hostIp)),
  )
}

function dropMappings(r: ContainerRecord, drop: (m: PortMapping) => boolean): void {
  for (const e of r.entries) {
    if (e.op !== 'expose') continue
    const ports = strs(e.args.ports)
    e.args = { ...e.args, ports: ports.filter((spec) => !parsePortSpecs([spec]).some(drop)) }
  }
  r.entries = r.entries.filter((e) => !(e.op === 'expose' && strs(e.args.ports).length === 0))
}

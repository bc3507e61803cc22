// Reading OVSDB `select` rows (RFC 7047 JSON): atoms (uuid, set, map) into plain values, rows into PortInfo and BridgeState.

export type Row = Record<string, unknown>

export interface PortInfo {
  name: string
  /** the Port row's uuid: what gc removes is the row it judged stale, not another made since under the name */
  uuid?: string
  /** the bridge holding the port ('' only if ovsdb has an orphan row, which it garbage-collects) */
  bridge: string
  /** access VLAN, if any */
  tag?: number
  /** trunk VLANs, sorted; [] when none */
  trunks: number[]
  externalIds: Record<string, string>
  /** the Interface row's `error` (e.g. "could not open network device X (No such device)") */
  ifaceError?: string
  /** OpenFlow port number: -1 when the interface could not be opened, undefined before vswitchd assigned one */
  ofport?: number
  /**
   * The Interface's link_state ('up' / 'down'). With the userspace datapath a deleted device
   * keeps its ofport and only goes 'down' (and leaves the kernel, which is what gc checks).
   */
  linkState?: string
}

const isTagged = (v: unknown, tag: string): v is [string, unknown] => Array.isArray(v) && v.length === 2 && v[0] === tag

/** An OVSDB set as an array: ["set",[...]] or, for exactly one member, the bare atom. */
export function atomSet(v: unknown): unknown[] {
  if (isTagged(v, 'set')) return Array.isArray(v[1]) ? v[1] : []
  if (v === undefined) return []
  return [v]
}

/** An optional column (set of 0 or 1): the atom, or undefined. */
export function atomOptional(v: unknown): unknown {
  const s = atomSet(v)
  return s.length ? s[0] : undefined
}

/** ["uuid","..."] -> the uuid text. */
export function atomUuid(v: unknown): string | undefined {
  return isTagged(v, 'uuid') && typeof v[1] === 'string' ? v[1] : undefined
}

/** ["map",[[k,v],...]] -> a record of strings. */
export function atomMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!isTagged(v, 'map') || !Array.isArray(v[1])) return out
  for (const pair of v[1]) {
    if (Array.isArray(pair) && pair.length === 2) out[String(pair[0])] = String(pair[1])
  }
  return out
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)

/**
 * Port rows (_uuid, name, tag, trunks, external_ids, interfaces), Bridge rows (name, ports) and
 * Interface rows (_uuid, name, ofport, error, link_state) into PortInfo, sorted by name.
 */
export function joinPorts(ports: Row[], bridges: Row[], ifaces: Row[]): PortInfo[] {
  const bridgeOf = new Map<string, string>()
  for (const b of bridges) for (const p of atomSet(b.ports)) {
    const id = atomUuid(p)
    if (id) bridgeOf.set(id, String(b.name))
  }
  const ifaceById = new Map<string, Row>()
  for (const i of ifaces) {
    const id = atomUuid(i._uuid)
    if (id) ifaceById.set(id, i)
  }
  return ports
    .map((p): PortInfo => {
      const name = String(p.name)
      const uuid = atomUuid(p._uuid)
      // A bond has several interfaces; plumb's ports have one, named like the port.
      const members = atomSet(p.interfaces)
        .map((u) => ifaceById.get(atomUuid(u) ?? ''))
        .filter((r): r is Row => r !== undefined)
      const iface = members.find((r) => r.name === name) ?? members[0]
      const tag = num(atomOptional(p.tag))
      const ofport = iface ? num(atomOptional(iface.ofport)) : undefined
      const error = iface ? atomOptional(iface.error) : undefined
      const linkState = iface ? atomOptional(iface.link_state) : undefined
      return {
        name,
        ...(uuid ? { uuid } : {}),
        bridge: (uuid && bridgeOf.get(uuid)) || '',
        ...(tag !== undefined ? { tag } : {}),
        trunks: atomSet(p.trunks)
          .map(num)
          .filter((n): n is number => n !== undefined)
          .sort((a, b) => a - b),
        externalIds: atomMap(p.external_ids),
        ...(typeof error === 'string' && error !== '' ? { ifaceError: error } : {}),
        ...(ofport !== undefined ? { ofport } : {}),
        ...(typeof linkState === 'string' ? { linkState } : {}),
      }
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

export interface BridgeState {
  name: string
  datapathType: string
  datapathVersion: string
  externalIds: Record<string, string>
  /** the bridge's local port (ofport 65534 when it works) */
  ofport?: number
  ifaceError?: string
}

/** A Bridge row (name, datapath_type, datapath_version, external_ids) and its local Interface row (ofport, error). */
export function bridgeFromRows(b: Row, i: Row | undefined): BridgeState {
  const ofport = i ? num(atomOptional(i.ofport)) : undefined
  const error = i ? atomOptional(i.error) : undefined
  return {
    name: String(b.name),
    datapathType: typeof b.datapath_type === 'string' ? b.datapath_type : '',
    datapathVersion: typeof b.datapath_version === 'string' ? b.datapath_version : '',
    externalIds: atomMap(b.external_ids),
    ...(ofport !== undefined ? { ofport } : {}),
    ...(typeof error === 'string' && error !== '' ? { ifaceError: error } : {}),
  }
}

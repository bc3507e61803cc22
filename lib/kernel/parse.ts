// Pure conversions between rtnetlink messages (as the `netlink` package parses them) and
// the typed LinkInfo / AddrInfo / RouteInfo views of types.ts; also address/MAC encoding.

import ipaddr from 'ipaddr.js'
import { ipv4Bytes } from '../parse/addr.js'
import type { rt } from './netlink.js'
import type { AddrInfo, Family, LinkInfo, RouteInfo, VxlanInfo } from './types.js'

export const AF_INET = 2
export const AF_INET6 = 10
export const familyOf = (af: number | undefined): Family | undefined => (af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined)
export const afOf = (family: Family): number => (family === 4 ? AF_INET : AF_INET6)

/** IFLA_OPERSTATE values (RFC 2863), as `ip` prints them */
const OPER_STATES = ['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP']

const MACVLAN_MODES: Record<number, NonNullable<LinkInfo['macvlanMode']>> = { 1: 'private', 2: 'vepa', 4: 'bridge', 8: 'passthru', 16: 'source' }
export const MACVLAN_MODE_BITS: Record<NonNullable<LinkInfo['macvlanMode']>, number> = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 }

const HEX_BYTE = Array.from({ length: 256 }, (_, x) => x.toString(16).padStart(2, '0'))

/** 'aa:bb:cc:dd:ee:ff': by a table and a loop (every link a dump parses has one or two; under --jitless 0.8-1 us against 3-6 for a spread, map and join). */
export function formatMac(b: Buffer): string {
  let s = b.length > 0 ? HEX_BYTE[b[0]!]! : ''
  for (let i = 1; i < b.length; i++) s += `:${HEX_BYTE[b[i]!]!}`
  return s
}

/** 'aa:bb:cc:dd:ee:ff' (or with '-') -> 6 bytes; the spec layer validated it already. */
export function parseMac(mac: string): Buffer {
  const parts = mac.split(/[:-]/)
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new TypeError(`invalid MAC address "${mac}"`)
  return Buffer.from(parts.map((p) => parseInt(p, 16)))
}

export function formatIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
  return ipaddr.fromByteArray([...b]).toString()
}

/** '198.18.0.2' -> { family: 4, bytes }: a plain dotted quad read directly (lib/parse/addr.ts's dottedQuad says why), anything else by ipaddr.js. */
export function parseIp(text: string): { family: Family; bytes: Buffer } {
  const v4 = ipv4Bytes(text)
  if (v4) return { family: 4, bytes: Buffer.from(v4) }
  const a = ipaddr.parse(text)
  return { family: a.kind() === 'ipv4' ? 4 : 6, bytes: Buffer.from(a.toByteArray()) }
}

/** '198.18.0.2/24' -> address bytes + prefix; a bare address gets /32 or /128. */
export function parseCidr(cidr: string): { family: Family; bytes: Buffer; prefix: number } {
  const slash = cidr.indexOf('/')
  const { family, bytes } = parseIp(slash < 0 ? cidr : cidr.slice(0, slash))
  const max = family === 4 ? 32 : 128
  const prefix = slash < 0 ? max : Number(cidr.slice(slash + 1))
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new TypeError(`invalid prefix length in "${cidr}"`)
  return { family, bytes, prefix }
}

/** A route destination: 'default' or CIDR, the network address (host bits zeroed, as the
 *  kernel demands: EINVAL "Invalid prefix for given prefix length" otherwise). */
export function parseDst(dst: string, family: Family): { bytes?: Buffer; prefix: number } {
  if (dst === 'default') return { prefix: 0 }
  const c = parseCidr(dst)
  if (c.family !== family) throw new TypeError(`route destination "${dst}" is not IPv${family}`)
  const bytes = Buffer.from(c.bytes)
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, c.prefix - i * 8))
    bytes[i]! &= (0xff << (8 - keep)) & 0xff
  }
  return { bytes, prefix: c.prefix }
}

const FOREVER = 0xffffffff

// ---- RTM_NEWADDR payloads, read directly ----------------------------------------------------
// As links below: the package's parse of an address message builds an object of every attribute
// (~25 us a message from the start-up snapshot); a segment check reads one dump per guest on the
// bridge. test/integration/kernel-linkwire.test.ts checks this against `ip -j addr show`.

const IFA = { ADDRESS: 1, LOCAL: 2, CACHEINFO: 6, FLAGS: 8 } as const
const IFA_F_PERMANENT = 0x80

/** An RTM_NEWADDR payload (struct ifaddrmsg, then attributes) as an AddrInfo; undefined for a family other than IPv4/IPv6 or no address. */
export function addrFromWire(data: Buffer): AddrInfo | undefined {
  const family = familyOf(data[0])
  if (!family || data.length < 8) return undefined
  let local: [number, number] | undefined
  let address: [number, number] | undefined
  // IFA_FLAGS (u32) supersedes the 8-bit ifa_flags when present
  let flags = data[2]!
  let valid: number | undefined
  let preferred: number | undefined
  forEachAttr(data, 8, data.length, (type, at, len) => {
    if (type === IFA.LOCAL) local = [at, len]
    else if (type === IFA.ADDRESS) address = [at, len]
    else if (type === IFA.FLAGS && len >= 4) flags = data.readUInt32LE(at)
    else if (type === IFA.CACHEINFO && len >= 8) {
      preferred = data.readUInt32LE(at)
      valid = data.readUInt32LE(at + 4)
    }
  })
  const [at, len] = local ?? address ?? [0, 0]
  if (len !== (family === 4 ? 4 : 16)) return undefined
  const info: AddrInfo = { index: data.readUInt32LE(4), family, address: formatIp(data.subarray(at, at + len)), prefix: data[1]!, permanent: (flags & IFA_F_PERMANENT) !== 0 }
  if (valid !== undefined && valid !== FOREVER) info.validLft = valid
  if (preferred !== undefined && preferred !== FOREVER) info.preferredLft = preferred
  return info
}

const SCOPES: Record<number, string> = { 0: 'universe', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' }
export const SCOPE_VALUES: Record<'universe' | 'link' | 'host', number> = { universe: 0, link: 253, host: 254 }
const PROTOCOLS: Record<number, string> = { 0: 'unspec', 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 9: 'ra', 16: 'dhcp' }
/** The package turns known enum values into their names ('UNICAST', 'LINK', 'KERNEL') and
 *  leaves unknown ones as numbers: one lower-case name either way. */
const enumName = (v: string | number | undefined, names: Record<number, string>): string =>
  typeof v === 'string' ? v.toLowerCase() : (names[v ?? 0] ?? String(v ?? 0))
/** RTNH_F_ONLINK, in the low byte of rtm_flags (the package leaves it in __unknown) */
export const RTNH_F_ONLINK = 4
export const RT_TABLE_MAIN = 254

/** Only unicast routes are returned: local/broadcast/multicast and cached clones are the
 *  kernel's own bookkeeping, and RouteInfo has no type to tell them apart. */
export function toRouteInfo(m: rt.RouteMessage): RouteInfo | undefined {
  const family = familyOf(m.data.family)
  if (!family) return undefined
  if (enumName(m.data.type, { 1: 'unicast' }) !== 'unicast') return undefined
  if (m.data.flags?.cloned) return undefined
  const a = m.attrs
  const dstLen = m.data.dstLen ?? 0
  const dst = dstLen === 0 ? 'default' : `${a.dst ? formatIp(a.dst) : family === 4 ? '0.0.0.0' : '::'}/${dstLen}`
  const info: RouteInfo = {
    family,
    dst,
    table: a.table ?? m.data.table ?? 0,
    scope: enumName(m.data.scope, SCOPES),
    protocol: enumName(m.data.protocol, PROTOCOLS),
    onlink: !!((m.data.flags?.__unknown ?? 0) & RTNH_F_ONLINK),
  }
  if (a.gateway) info.gateway = formatIp(a.gateway)
  if (a.oif !== undefined) info.oif = a.oif
  if (a.priority !== undefined) info.metric = a.priority
  return info
}

// ---- RTM_NEWLINK payloads, read directly ----------------------------------------------------
// The netlink package parses every attribute of a link message, its ~700 bytes of per-family
// devconf arrays included; an attach reads four link messages and uses a dozen fields of each.
// This reads just those fields (test/integration/kernel-linkwire.test.ts checks it against
// `ip -j -d link show` on a real dump).

const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINK: 5, MASTER: 10, OPERSTATE: 16, LINKINFO: 18, IFALIAS: 20, LINK_NETNSID: 37 } as const
const INFO = { KIND: 1, DATA: 2, SLAVE_KIND: 4, SLAVE_DATA: 5 } as const
/** IFLA_BRPORT_ISOLATED in a bridge port's IFLA_INFO_SLAVE_DATA */
const BRPORT_ISOLATED = 33
const IFF_UP = 1
const NLA_TYPE_MASK = 0x3fff

/**
 * Each attribute (type without the nested/byte-order flags, payload) in buf[start, end). The
 * header's two u16 are read from the bytes: Buffer's readUInt16LE validates its offset through
 * two more calls, and a run from the start-up snapshot has no compiler to inline them (a dump of
 * 20 ports is ~2000 reads: ~0.4 ms of a one-shot attach).
 */
function forEachAttr(buf: Buffer, start: number, end: number, fn: (type: number, at: number, len: number) => void): void {
  let off = start
  while (off + 4 <= end) {
    const len = buf[off]! | (buf[off + 1]! << 8)
    if (len < 4 || off + len > end) break
    fn((buf[off + 2]! | (buf[off + 3]! << 8)) & NLA_TYPE_MASK, off + 4, len - 4)
    off += (len + 3) & ~3
  }
}

/** A NUL-terminated string attribute. */
function str(buf: Buffer, at: number, len: number): string {
  let stop = at + len
  while (stop > at && buf[stop - 1] === 0) stop--
  return buf.toString('utf8', at, stop)
}

/** ifi_type (ARPHRD_*) as iproute2 names it (`link/ether`); others as it prints unknown ones. */
const LINK_TYPES: Record<number, string> = { 1: 'ether', 768: 'ipip', 769: 'tunnel6', 772: 'loopback', 776: 'sit', 778: 'gre', 823: 'ip6gre', 65534: 'none', 65535: 'void' }
export const linkTypeName = (arphrd: number): string => LINK_TYPES[arphrd] ?? `[${arphrd}]`

/** An RTM_NEWLINK payload (struct ifinfomsg, then attributes) as a LinkInfo. */
export function linkFromWire(data: Buffer): LinkInfo {
  const info: LinkInfo = {
    index: data.readInt32LE(4),
    name: '',
    mtu: 0,
    up: (data.readUInt32LE(8) & IFF_UP) !== 0,
    operState: 'UNKNOWN',
    linkType: linkTypeName(data.readUInt16LE(2)),
  }
  let linkinfo: [number, number] | undefined
  forEachAttr(data, 16, data.length, (type, at, len) => {
    switch (type) {
      case IFLA.IFNAME:
        info.name = str(data, at, len)
        break
      case IFLA.MTU:
        info.mtu = data.readUInt32LE(at)
        break
      case IFLA.OPERSTATE:
        info.operState = OPER_STATES[data[at]!] ?? 'UNKNOWN'
        break
      case IFLA.ADDRESS:
        if (len === 6) info.mac = formatMac(data.subarray(at, at + 6))
        break
      case IFLA.MASTER: {
        const master = data.readUInt32LE(at)
        if (master) info.master = master
        break
      }
      case IFLA.IFALIAS: {
        const alias = str(data, at, len)
        if (alias) info.alias = alias
        break
      }
      case IFLA.LINK:
        if (len >= 4) info.link = data.readUInt32LE(at)
        break
      case IFLA.LINK_NETNSID:
        if (len >= 4) info.linkNetnsId = data.readInt32LE(at)
        break
      case IFLA.LINKINFO:
        linkinfo = [at, len]
        break
    }
  })
  if (linkinfo) {
    let kindData: [number, number] | undefined
    let slaveData: [number, number] | undefined
    forEachAttr(data, linkinfo[0], linkinfo[0] + linkinfo[1], (type, at, len) => {
      if (type === INFO.KIND) info.kind = str(data, at, len)
      else if (type === INFO.SLAVE_KIND) info.slaveKind = str(data, at, len)
      else if (type === INFO.DATA) kindData = [at, len]
      else if (type === INFO.SLAVE_DATA) slaveData = [at, len]
    })
    if (kindData && info.kind === 'vxlan') info.vxlan = vxlanFromWire(data, kindData[0], kindData[0] + kindData[1])
    if (slaveData && info.slaveKind === 'bridge') {
      forEachAttr(data, slaveData[0], slaveData[0] + slaveData[1], (type, at, len) => {
        if (type === BRPORT_ISOLATED && len >= 1) info.isolated = data[at] === 1
      })
    }
    if (kindData && (info.kind === 'macvlan' || info.kind === 'vlan')) {
      // IFLA_MACVLAN_MODE (u32) and IFLA_VLAN_ID (u16) are both attribute 1 of the kind's data
      forEachAttr(data, kindData[0], kindData[0] + kindData[1], (type, at, len) => {
        if (type !== 1) return
        if (info.kind === 'macvlan' && len >= 4) {
          const mode = MACVLAN_MODES[data.readUInt32LE(at)]
          if (mode) info.macvlanMode = mode
        } else if (info.kind === 'vlan' && len >= 2) info.vlanId = data.readUInt16LE(at)
      })
    }
  }
  return info
}

// IFLA_VXLAN_* attribute numbers (linux/if_link.h)
const VXLAN = { ID: 1, LINK: 3, LOCAL: 4, LEARNING: 7, PORT: 15, LOCAL6: 17 } as const

function vxlanFromWire(data: Buffer, start: number, end: number): VxlanInfo {
  const v: VxlanInfo = { vni: 0, port: 0, learning: true }
  forEachAttr(data, start, end, (type, at, len) => {
    if (type === VXLAN.ID && len >= 4) v.vni = data.readUInt32LE(at)
    else if (type === VXLAN.LINK && len >= 4) v.dev = data.readUInt32LE(at) || undefined
    else if (type === VXLAN.LOCAL && len === 4) v.local = formatIp(data.subarray(at, at + 4))
    else if (type === VXLAN.LOCAL6 && len === 16) v.local = formatIp(data.subarray(at, at + 16))
    else if (type === VXLAN.LEARNING && len >= 1) v.learning = data[at] !== 0
    // the port travels in network byte order
    else if (type === VXLAN.PORT && len >= 2) v.port = data.readUInt16BE(at)
  })
  if (v.dev === undefined) delete v.dev
  return v
}

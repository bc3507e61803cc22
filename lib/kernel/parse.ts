// Pure conversions between rtnetlink messages (as the `netlink` package parses them) and
// the typed LinkInfo / AddrInfo / RouteInfo views of types.ts; also address/MAC encoding.

import ipaddr from 'ipaddr.js'
import { ifla } from './netlink.js'
import type { rt } from './netlink.js'
import type { AddrInfo, Family, LinkInfo, RouteInfo } from './types.js'

export const AF_INET = 2
export const AF_INET6 = 10
export const familyOf = (af: number | undefined): Family | undefined => (af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined)
export const afOf = (family: Family): number => (family === 4 ? AF_INET : AF_INET6)

/** IFLA_OPERSTATE values (RFC 2863), as `ip` prints them */
const OPER_STATES = ['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP']

const MACVLAN_MODES: Record<number, NonNullable<LinkInfo['macvlanMode']>> = { 1: 'private', 2: 'vepa', 4: 'bridge', 8: 'passthru', 16: 'source' }
export const MACVLAN_MODE_BITS: Record<NonNullable<LinkInfo['macvlanMode']>, number> = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 }

export function formatMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')
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

/** '198.18.0.2' -> { family: 4, bytes } */
export function parseIp(text: string): { family: Family; bytes: Buffer } {
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

const u32 = (b: Buffer | undefined): number | undefined => (b && b.length >= 4 ? b.readUInt32LE(0) : undefined)

export function toLinkInfo(m: rt.LinkMessage): LinkInfo {
  const a = m.attrs
  const info: LinkInfo = {
    index: m.data.index ?? 0,
    name: a.ifname ?? '',
    mtu: a.mtu ?? 0,
    up: !!m.data.flags?.up,
    operState: OPER_STATES[a.operstate ?? 0] ?? 'UNKNOWN',
  }
  if (a.address && a.address.length === 6) info.mac = formatMac(a.address)
  if (a.master) info.master = a.master
  if (a.ifalias) info.alias = a.ifalias
  const link = u32(a.link)
  if (link !== undefined) info.link = link
  if (a.linkNetnsid !== undefined) info.linkNetnsId = a.linkNetnsid
  if (a.linkinfo) {
    const li = ifla.parseInfo(a.linkinfo)
    if (li.kind) info.kind = li.kind
    if (li.slaveKind) info.slaveKind = li.slaveKind
    if (li.data && li.kind === 'macvlan') {
      const mode = ifla.parseMacvlan(li.data).mode
      if (mode !== undefined && MACVLAN_MODES[mode]) info.macvlanMode = MACVLAN_MODES[mode]
    }
    if (li.data && li.kind === 'vlan') {
      const id = ifla.parseVlan(li.data).id
      if (id !== undefined) info.vlanId = id
    }
  }
  return info
}

const FOREVER = 0xffffffff

export function toAddrInfo(m: rt.AddressMessage): AddrInfo | undefined {
  const family = familyOf(m.data.family)
  const bytes = m.attrs.local ?? m.attrs.address
  if (!family || !bytes) return undefined
  // IFA_FLAGS (u32) supersedes the 8-bit ifa_flags when present
  const flags = m.attrs.flags ?? m.data.flags ?? {}
  const info: AddrInfo = { index: m.data.index ?? 0, family, address: formatIp(bytes), prefix: m.data.prefixlen ?? 0, permanent: !!flags.permanent }
  const ci = m.attrs.cacheInfo
  if (ci && ci.ifaValid !== undefined && ci.ifaValid !== FOREVER) info.validLft = ci.ifaValid
  if (ci && ci.ifaPrefered !== undefined && ci.ifaPrefered !== FOREVER) info.preferredLft = ci.ifaPrefered
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

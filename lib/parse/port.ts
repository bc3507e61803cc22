// Docker's `-p` grammar for `plumb expose` (PORTSPEC), masquerade's `<bridge|CIDR>` and isolate's
// `--allow A,B`, made strict: everything is refused here, before anything is touched.

import { usageError } from '../errors.js'
import { bytesToText, maskBytes, parseAddr, parsePrefix, sameBytes } from './addr.js'
import { parseGuestRef } from './guest.js'
import type { GuestRef } from './guest.js'
import { validateIfname } from './ifname.js'

export type PortProto = 'tcp' | 'udp'

/** One published port: what `-p` means once ranges are expanded. */
export interface PortMapping {
  proto: PortProto
  /** the host address it answers on; absent: every host address (Docker's 0.0.0.0) */
  hostIp?: string
  /** absent: chosen from the host's ip_local_port_range */
  hostPort?: number
  /** the guest's port */
  port: number
}

/** A range wider than this is refused: each port is a few rules in one iptables batch. */
export const PORT_RANGE_MAX = 1000

const EXAMPLES = 'e.g. 8080:80, 127.0.0.1:8080:80, 127.0.0.1::80, 80, 5353:53/udp'

function parsePort(text: string, what: string, spec: string): number {
  if (!/^\d+$/.test(text)) throw usageError(`invalid ${what} "${text}" in "${spec}"`, `a port is a decimal number 1..65535 (${EXAMPLES})`)
  const n = Number(text)
  if (n < 1 || n > 65535) throw usageError(`${what} ${text} out of range in "${spec}"`, 'ports are 1..65535')
  if (text.length > 1 && text.startsWith('0')) throw usageError(`invalid ${what} "${text}" in "${spec}": leading zero`, `did you mean ${n}?`)
  return n
}

/** `N` or `N-M`, as the list of ports it names. */
function parsePortRange(text: string, what: string, spec: string): number[] {
  const dash = text.indexOf('-')
  if (dash === -1) return [parsePort(text, what, spec)]
  const lo = parsePort(text.slice(0, dash), what, spec)
  const hi = parsePort(text.slice(dash + 1), what, spec)
  if (hi < lo) throw usageError(`${what} range "${text}" runs backwards in "${spec}"`, `did you mean ${hi}-${lo}?`)
  if (hi - lo + 1 > PORT_RANGE_MAX) throw usageError(`${what} range "${text}" in "${spec}" has ${hi - lo + 1} ports`, `publish at most ${PORT_RANGE_MAX} ports per range`)
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i)
}

function parseHostIp(text: string, spec: string): string | undefined {
  if (text.startsWith('[')) {
    throw usageError(`IPv6 host address "${text}" in "${spec}": plumb publishes IPv4 only`, 'give an IPv4 host address or none (every IPv4 address of the host)')
  }
  const a = parseAddr(text, 'host address', spec)
  if (a.family !== 4) throw usageError(`IPv6 host address "${text}" in "${spec}": plumb publishes IPv4 only`, 'give an IPv4 host address or none (every IPv4 address of the host)')
  if (a.bytes.every((b) => b === 0)) return undefined // 0.0.0.0: every address, as Docker reads it
  if (a.bytes[0]! >= 224) throw usageError(`host address ${a.text} in "${spec}" is not a unicast address`, 'give an address of the host, e.g. 127.0.0.1 or the address of one of its interfaces')
  return a.text
}

/**
 * Parse one PORTSPEC: `[[HOSTIP:][HOSTPORT]:]PORT[/tcp|/udp]`, where HOSTPORT and PORT may be
 * ranges of equal length (`8000-8001:80-81`). Returns one mapping per port.
 */
export function parsePortSpec(s: string): PortMapping[] {
  const spec = s.trim()
  if (spec === '') throw usageError('empty PORTSPEC', `give a port to publish (${EXAMPLES})`)
  let body = spec
  let proto: PortProto = 'tcp'
  const slash = spec.lastIndexOf('/')
  if (slash !== -1) {
    const p = spec.slice(slash + 1).toLowerCase()
    if (p !== 'tcp' && p !== 'udp') {
      throw usageError(`unknown protocol "${spec.slice(slash + 1)}" in "${spec}"`, 'plumb publishes /tcp (the default) and /udp')
    }
    proto = p
    body = spec.slice(0, slash)
  }
  if (body.startsWith('[')) parseHostIp(body.includes(']') ? body.slice(0, body.indexOf(']') + 1) : body, spec)
  const parts = body.split(':')
  if (parts.length > 3) throw usageError(`too many ":" in PORTSPEC "${spec}"`, `the forms are PORT, HOSTPORT:PORT and HOSTIP:[HOSTPORT]:PORT (${EXAMPLES})`)
  const portText = parts[parts.length - 1]!
  const hostPortText = parts.length >= 2 ? parts[parts.length - 2]! : ''
  const hostIpText = parts.length === 3 ? parts[0]! : undefined
  if (portText === '') throw usageError(`missing guest port in "${spec}"`, `the guest's port comes last (${EXAMPLES})`)
  const hostIp = hostIpText === undefined ? undefined : parseHostIp(hostIpText, spec)
  if (hostIpText === '') throw usageError(`empty host address in "${spec}"`, 'drop the leading ":" or give an address, e.g. 127.0.0.1:8080:80')
  const ports = parsePortRange(portText, 'guest port', spec)
  const hostPorts = hostPortText === '' ? undefined : parsePortRange(hostPortText, 'host port', spec)
  if (hostPorts && hostPorts.length !== ports.length) {
    throw usageError(`host port range "${hostPortText}" and guest port range "${portText}" differ in length in "${spec}"`, 'give ranges of equal length, e.g. 8000-8001:80-81')
  }
  return ports.map((port, i) => ({ proto, ...(hostIp !== undefined ? { hostIp } : {}), ...(hostPorts ? { hostPort: hostPorts[i]! } : {}), port }))
}

/** Several PORTSPECs; the same host port (or the same auto-published guest port) twice is refused. */
export function parsePortSpecs(specs: readonly string[]): PortMapping[] {
  const all = specs.flatMap((s) => parsePortSpec(s))
  const seen = new Set<string>()
  for (const m of all) {
    const key = m.hostPort !== undefined ? `${m.proto} ${m.hostIp ?? '*'}:${m.hostPort}` : `${m.proto} ${m.hostIp ?? '*'}:auto->${m.port}`
    if (seen.has(key)) throw usageError(`${formatMapping(m)} is given twice`, 'name each host port once')
    seen.add(key)
  }
  return all
}

/** Docker's spelling of a mapping: `127.0.0.1:8080:80/tcp`, `8080:80/udp`, `80/tcp`. */
export function formatMapping(m: PortMapping): string {
  const host = m.hostPort === undefined ? (m.hostIp ? `${m.hostIp}::` : '') : `${m.hostIp ? `${m.hostIp}:` : ''}${m.hostPort}:`
  return `${host}${m.port}/${m.proto}`
}

/** expose's `--to`: one IPv4 address of the guest (no prefix). */
export function parseGuestAddress(s: string): string {
  const spec = s.trim()
  if (spec.includes('/')) throw usageError(`--to takes an address, not a CIDR: "${spec}"`, `did you mean ${spec.slice(0, spec.indexOf('/'))}?`)
  const a = parseAddr(spec, 'address', spec)
  if (a.family !== 4) throw usageError(`--to ${a.text} is IPv6: plumb publishes IPv4 only`, "give the guest's IPv4 address")
  return a.text
}

/** The network `ADDR/PREFIX` an IPv4 address is in. */
export function networkOf(address: string, prefix: number): string {
  return `${bytesToText(maskBytes(address.split('.').map(Number), prefix))}/${prefix}`
}

/** An IPv4 network `ADDR/PREFIX`, host bits clear (masquerade's CIDR form). */
export interface Network {
  /** canonical `198.18.0.0/24` */
  cidr: string
  address: string
  prefix: number
}

/** Whether a masquerade source looks like an address rather than a bridge name. */
function looksLikeCidr(s: string): boolean {
  return s.includes('/') || /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || s.includes(':')
}

export function parseNetwork(s: string): Network {
  const spec = s.trim()
  const slash = spec.indexOf('/')
  const addr = parseAddr(slash === -1 ? spec : spec.slice(0, slash), 'network', spec)
  if (addr.family !== 4) throw usageError(`"${spec}" is IPv6: plumb masquerades IPv4 only`, 'give an IPv4 CIDR, e.g. 198.18.0.0/24, or a bridge')
  if (slash === -1) throw usageError(`missing prefix length in CIDR "${spec}"`, `did you mean ${bytesToText(maskBytes(addr.bytes, 24))}/24?`)
  const prefix = parsePrefix(spec.slice(slash + 1), 4, spec)
  if (prefix === 0) throw usageError(`"${spec}" would masquerade every address`, 'give the guests\' network, e.g. 198.18.0.0/24')
  const net = maskBytes(addr.bytes, prefix)
  if (!sameBytes(net, addr.bytes)) throw usageError(`CIDR "${spec}" has host bits set`, `did you mean ${bytesToText(net)}/${prefix}?`)
  return { cidr: `${addr.text}/${prefix}`, address: addr.text, prefix }
}

/** masquerade's first argument: a bridge (an interface name) or an IPv4 CIDR. */
export type MasqueradeSource = { kind: 'bridge'; bridge: string } | { kind: 'cidr'; network: Network }

export function parseMasqueradeSource(s: string): MasqueradeSource {
  if (looksLikeCidr(s.trim())) return { kind: 'cidr', network: parseNetwork(s) }
  return { kind: 'bridge', bridge: validateIfname(s.trim(), 'bridge name') }
}

/** isolate's `--allow A,B`: two different guests. */
export function parseGuestPair(s: string): [GuestRef, GuestRef] {
  const parts = s.split(',').map((p) => p.trim())
  if (parts.length !== 2 || parts.some((p) => p === '')) throw usageError(`--allow "${s}" is not a pair`, 'write --allow GUEST,GUEST (repeat --allow for more pairs)')
  const [a, b] = parts as [string, string]
  if (a === b) throw usageError(`--allow "${s}" names the same guest twice`, 'a pair is two different guests')
  return [parseGuestRef(a), parseGuestRef(b)]
}

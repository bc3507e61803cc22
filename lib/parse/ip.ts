// IP specs (`ADDR/PREFIX[@GATEWAY]` or `dhcp`) and route specs (`DST[@GW]`), pipework's terse grammar made strict.

import { usageError } from '../errors.js'
import { broadcastBytes, bytesToText, inSubnet, maskBytes, parseAddr, parsePrefix, sameBytes, unusable } from './addr.js'
import type { Addr, Family } from './addr.js'

export type IpSpec =
  | {
      kind: 'static'
      family: Family
      address: string
      prefix: number
      /** 'addr/prefix', canonical */
      cidr: string
      /** canonical network CIDR */
      network: string
      gateway?: string
      /** gateway outside the subnet: the caller adds an on-link host route to it first */
      gatewayOnLink: boolean
    }
  | { kind: 'dhcp' }

export interface RouteSpec {
  family: Family
  /** 'default' or a canonical network CIDR (host bits zero) */
  dst: 'default' | string
  gateway?: string
}

const EXAMPLE_PREFIX: Record<Family, number> = { 4: 24, 6: 64 }

/** Split `X@GW` once; a second `@` is an error. */
function splitAt(s: string, spec: string): [string, string | undefined] {
  const parts = s.split('@')
  if (parts.length > 2) throw usageError(`more than one "@" in "${spec}"`, 'only one gateway per spec: ADDR/PREFIX@GATEWAY')
  if (parts.length === 2 && parts[1] === '') throw usageError(`empty gateway after "@" in "${spec}"`, 'drop the "@" or give a gateway address')
  return [parts[0]!, parts[1]]
}

function parseGateway(text: string, family: Family, spec: string): Addr {
  if (text.includes('/')) throw usageError(`gateway "${text}" in "${spec}" must not have a prefix`, `write ...@${text.slice(0, text.indexOf('/'))}`)
  const gw = parseAddr(text, 'gateway', spec)
  if (gw.family !== family) {
    throw usageError(`gateway ${gw.text} is IPv${gw.family} but "${spec}" is IPv${family}`, 'a gateway must be of the same family as the address; give one spec per family')
  }
  const why = unusable(gw)
  if (why) throw usageError(`gateway ${gw.text} in "${spec}" is ${why}`, 'give the address of a router on the link')
  return gw
}

/** IPv6 link-local gateways are on-link by definition: no host route needed (the kernel uses the device). */
function isLinkLocal6(a: Addr): boolean {
  return a.family === 6 && a.bytes[0] === 0xfe && (a.bytes[1]! & 0xc0) === 0x80
}

/**
 * Parse `ADDR/PREFIX[@GATEWAY]` (family detected) or the word `dhcp`.
 * A missing prefix is refused with a hint rather than guessed, as /32 would silently give
 * the guest no on-link subnet.
 */
export function parseIpSpec(s: string): IpSpec {
  if (typeof s !== 'string') throw usageError(`invalid IP spec ${JSON.stringify(s)}: not a string`, 'one spec per item: ADDR/PREFIX[@GATEWAY], or dhcp')
  const spec = s.trim()
  if (spec.toLowerCase() === 'dhcp') return { kind: 'dhcp' }
  const [cidr, gwText] = splitAt(spec, spec)
  const slash = cidr.indexOf('/')
  const addrText = slash === -1 ? cidr : cidr.slice(0, slash)
  const addr = parseAddr(addrText, 'address', spec)
  const family = addr.family
  if (slash === -1) {
    const suggestion = `${addr.text}/${EXAMPLE_PREFIX[family]}${gwText === undefined ? '' : `@${gwText}`}`
    throw usageError(`missing prefix length in IP spec "${spec}"`, `did you mean ${suggestion}?`)
  }
  const prefix = parsePrefix(cidr.slice(slash + 1), family, spec)
  if (prefix === 0) {
    throw usageError(`prefix length /0 in IP spec "${spec}" would put every address on-link`, `did you mean ${addr.text}/${EXAMPLE_PREFIX[family]}?`)
  }
  const why = unusable(addr)
  if (why) throw usageError(`address ${addr.text} in "${spec}" is ${why}`, 'give a unicast address, e.g. 198.18.0.10/24')
  const net = maskBytes(addr.bytes, prefix)
  const network = `${bytesToText(net)}/${prefix}`
  // /31 (RFC 3021) and /32 have no network or broadcast address; below that they are not hosts.
  if (family === 4 && prefix <= 30) {
    const bcast = broadcastBytes(addr.bytes, prefix)
    const first = [...net]
    first[3]! += 1
    const kind = sameBytes(addr.bytes, net) ? 'network' : sameBytes(addr.bytes, bcast) ? 'broadcast' : undefined
    if (kind) {
      throw usageError(`address ${addr.text} is the ${kind} address of ${network} in "${spec}"`, `did you mean ${bytesToText(first)}/${prefix}?`)
    }
  }
  const base = { kind: 'static' as const, family, address: addr.text, prefix, cidr: `${addr.text}/${prefix}`, network }
  if (gwText === undefined) return { ...base, gatewayOnLink: false }
  const gw = parseGateway(gwText, family, spec)
  if (sameBytes(gw.bytes, addr.bytes)) throw usageError(`gateway ${gw.text} is the address itself in "${spec}"`, 'the gateway is another host on the link, e.g. the .1 of the subnet')
  if (family === 4 && prefix <= 30 && sameBytes(gw.bytes, broadcastBytes(addr.bytes, prefix))) {
    throw usageError(`gateway ${gw.text} is the broadcast address of ${network} in "${spec}"`, 'give the address of a router on the link')
  }
  const onLink = !inSubnet(gw.bytes, addr.bytes, prefix) && !isLinkLocal6(gw)
  return { ...base, gateway: gw.text, gatewayOnLink: onLink }
}

/**
 * Parse a route `DST[@GW]`: DST is a CIDR or `default`. `0.0.0.0/0` and `::/0` become
 * `default` (a device route when no gateway); a bare `default` needs a gateway to tell its family.
 */
export function parseRouteSpec(s: string): RouteSpec {
  if (typeof s !== 'string') throw usageError(`invalid route ${JSON.stringify(s)}: not a string`, 'one route per item: DST[@GW]')
  const spec = s.trim()
  const [dstText, gwText] = splitAt(spec, spec)
  if (dstText.toLowerCase() === 'default') {
    if (gwText === undefined) {
      throw usageError(`route "${spec}" has no gateway, so its family is unknown`, 'write default@198.18.0.1, or 0.0.0.0/0 (or ::/0) for a device route')
    }
    const gw = parseAddr(gwText, 'gateway', spec)
    return { family: gw.family, dst: 'default', gateway: parseGateway(gwText, gw.family, spec).text }
  }
  const slash = dstText.indexOf('/')
  const addr = parseAddr(slash === -1 ? dstText : dstText.slice(0, slash), 'route destination', spec)
  const family = addr.family
  if (slash === -1) {
    const max = family === 4 ? 32 : 128
    throw usageError(`missing prefix length in route destination "${dstText}"`, `did you mean ${addr.text}/${max}${gwText === undefined ? '' : `@${gwText}`} (a host route)?`)
  }
  const prefix = parsePrefix(dstText.slice(slash + 1), family, spec)
  const net = maskBytes(addr.bytes, prefix)
  if (!sameBytes(net, addr.bytes)) {
    throw usageError(`route destination "${dstText}" has host bits set`, `did you mean ${bytesToText(net)}/${prefix}?`)
  }
  const dst = prefix === 0 ? 'default' : `${addr.text}/${prefix}`
  if (gwText === undefined) return { family, dst }
  return { family, dst, gateway: parseGateway(gwText, family, spec).text }
}

/** Is `address` inside the subnet of `ip` (an address and its prefix)? Pure: no spec rules apply. */
export function subnetContains(ip: { address: string; prefix: number }, address: string): boolean {
  const a = parseAddr(ip.address, 'address', ip.address)
  const b = parseAddr(address, 'address', address)
  return a.family === b.family && inSubnet(b.bytes, a.bytes, ip.prefix)
}

/** An IP spec written back as the text parseIpSpec reads (canonical): what a record keeps. */
export function ipSpecText(ip: IpSpec): string {
  return ip.kind === 'dhcp' ? 'dhcp' : `${ip.cidr}${ip.gateway !== undefined ? `@${ip.gateway}` : ''}`
}

/** A route spec written back as the text parseRouteSpec reads (a device default route as 0.0.0.0/0 or ::/0). */
export function routeSpecText(r: RouteSpec): string {
  const dst = r.dst === 'default' && r.gateway === undefined ? (r.family === 4 ? '0.0.0.0/0' : '::/0') : r.dst
  return `${dst}${r.gateway !== undefined ? `@${r.gateway}` : ''}`
}

// The input every link op takes (guest, IP specs, routes, -i, --mac, --mtu), validated before
// anything is touched: pure, no I/O.

import { usageError } from '../errors.js'
import { checkMtuForFamilies, parseIpSpec, parseMac, parseMtu, parseRouteSpec, validateIfname } from '../parse/index.js'
import type { GuestRef, IpSpec, RouteSpec } from '../parse/index.js'
import { toGuestRef } from './context.js'
import { isStatic } from './guest-config.js'
import type { StaticIp } from './guest-config.js'
import { validateLinkDhcp } from './dhcp.js'
import type { DhcpLeaseOptions } from './dhcp.js'

export interface ValidatedLinkInput {
  guest: GuestRef
  ips: IpSpec[]
  statics: StaticIp[]
  routes: RouteSpec[]
  ifname?: string
  mac?: string
  mtu?: number
}

/** Pure validation shared by every link op: IP specs, routes, -i, --mac, --mtu. */
export function validateLinkInput(o: {
  guest: string | GuestRef
  ips?: string[]
  routes?: string[]
  ifname?: string
  mac?: string
  mtu?: number | string
  dhcp?: DhcpLeaseOptions
}): ValidatedLinkInput {
  const guest = toGuestRef(o.guest)
  const ips = (o.ips ?? []).map(parseIpSpec)
  const statics = ips.filter(isStatic)
  const seen = new Set<string>()
  for (const ip of statics) {
    if (seen.has(ip.address)) throw usageError(`address ${ip.address} given twice`)
    seen.add(ip.address)
  }
  if (ips.filter((ip) => ip.kind === 'dhcp').length > 1) throw usageError('dhcp given twice')
  validateLinkDhcp(guest, ips, o.dhcp)
  const routes = (o.routes ?? []).map(parseRouteSpec)
  const out: ValidatedLinkInput = { guest, ips, statics, routes }
  if (o.ifname !== undefined) out.ifname = validateIfname(o.ifname, 'guest interface name (-i)')
  if (o.mac !== undefined) out.mac = parseMac(o.mac)
  if (o.mtu !== undefined) {
    out.mtu = parseMtu(o.mtu)
    checkMtuForFamilies(out.mtu, [...new Set(statics.map((s) => s.family))])
  }
  return out
}


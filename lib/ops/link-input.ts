// The input every link op takes (guest, IP specs, routes, -i, --mac, --mtu), validated before
// anything is touched: pure, no I/O.

import { usageError } from '../errors.js'
import { checkMtuForFamilies, isMarkExtraKey, parseIpSpec, parseMac, parseMtu, parseRouteSpec, validateIfname } from '../parse/index.js'
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
  /** extra owner-mark fields naming who the link is for (the CNI plugin's container id and ifname) */
  tags?: Record<string, string>
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
  tags?: Record<string, string>
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
  if (o.tags !== undefined) out.tags = validateTags(o.tags)
  if (o.mtu !== undefined) {
    out.mtu = parseMtu(o.mtu)
    checkMtuForFamilies(out.mtu, [...new Set(statics.map((s) => s.family))])
  }
  return out
}


/** Tags ride in owner marks (and OVS external_ids) beside plumb's own fields: keys must not collide. */
function validateTags(tags: Record<string, string>): Record<string, string> {
  for (const [k, val] of Object.entries(tags)) {
    if (!isMarkExtraKey(k) || ['parent', 'mode', 'vid', 'orig', 'up', 'alias', 'peerGuest', 'vni', 'dstport', 'underlay', 'brmtu', 'lab'].includes(k)) throw usageError(`invalid tag key "${k}"`, 'tag keys are [A-Za-z0-9_.-]+ and not one of plumb\'s own mark fields')
    if (typeof val !== 'string' || val === '') throw usageError(`tag "${k}" needs a non-empty string value`)
  }
  return { ...tags }
}

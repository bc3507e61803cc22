// The input every link op takes (guest, IP specs, routes, -i, --mac, --mtu), validated before
// anything is touched: pure, no I/O.

import { usageError } from '../errors.js'
import { checkMtuForFamilies, isMarkExtraKey, parseIpSpec, parseMac, parseMtu, parseRouteSpec, validateIfname } from '../parse/index.js'
import type { GuestRef, IpSpec, RouteSpec } from '../parse/index.js'
import { toGuestRef } from './context.js'
import { isStatic } from './guest-config.js'
import type { DefaultWant, StaticIp } from './guest-config.js'
import { validateLinkDhcp } from './lease.js'
import type { DhcpLeaseOptions } from './lease.js'

export interface ValidatedLinkInput {
  guest: GuestRef
  ips: IpSpec[]
  statics: StaticIp[]
  /** the default route per family: from @GATEWAY or --route default@GW */
  defaults: DefaultWant[]
  /** the other routes (--route), defaults taken out */
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
  const { defaults, routes } = splitRoutes(statics, (o.routes ?? []).map(parseRouteSpec))
  const out: ValidatedLinkInput = { guest, ips, statics, defaults, routes }
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

/**
 * The default routes asked for (one per family; the same gateway twice is one) and the other
 * routes (each destination once). Two gateways of a family, or one destination twice, is bad
 * input: refused here, before anything is touched, rather than found by the kernel half-way.
 */
export function splitRoutes(statics: StaticIp[], specs: RouteSpec[]): { defaults: DefaultWant[]; routes: RouteSpec[] } {
  const defaults = new Map<number, DefaultWant & { from: string }>()
  const want = (d: DefaultWant, from: string): void => {
    const prev = defaults.get(d.family)
    if (!prev) return void defaults.set(d.family, { ...d, from })
    if (prev.gateway === d.gateway) {
      prev.onLink ||= d.onLink
      return
    }
    throw usageError(
      `two IPv${d.family} default routes given (${prev.from} and ${from})`,
      'a guest has one default route per family: give @GATEWAY (or --route default@GW) once',
    )
  }
  for (const ip of statics) if (ip.gateway) want({ family: ip.family, gateway: ip.gateway, onLink: ip.gatewayOnLink }, `${ip.cidr}@${ip.gateway}`)
  const routes: RouteSpec[] = []
  const seen = new Set<string>()
  for (const r of specs) {
    if (r.dst === 'default') {
      want({ family: r.family, ...(r.gateway ? { gateway: r.gateway } : {}), onLink: false }, `--route ${r.gateway ? `default@${r.gateway}` : r.family === 4 ? '0.0.0.0/0' : '::/0'}`)
      continue
    }
    const key = `${r.family} ${r.dst}`
    if (seen.has(key)) throw usageError(`--route ${r.dst} given twice`, 'one route per destination: give each --route once')
    seen.add(key)
    routes.push(r)
  }
  return { defaults: [...defaults.values()].map(({ from: _from, ...d }) => d), routes }
}

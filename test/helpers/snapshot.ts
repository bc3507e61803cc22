// A normalised picture of a netns's links, addresses and routes (from `ip -j`), for asserting that
// an operation that failed or was undone left everything as it was: t.deepEqual(before, after).

import { ipBatchJson } from './netns.js'
import type { IpObject } from './netns.js'

export interface Snapshot {
  links: IpObject[]
  addrs: IpObject[]
  routes: IpObject[]
}

// Fields that change with time or carrier rather than with configuration. Carrier is processed
// by the kernel's linkwatch up to a second later, so operstate/LOWER_UP/bridge-port state can
// lag a rollback that did restore everything; timers and counters tick on their own.
const VOLATILE_KEYS = new Set(['stats', 'stats64', 'operstate', 'valid_life_time', 'preferred_life_time', 'expires', 'tentative'])
const VOLATILE_FLAGS = new Set(['LOWER_UP', 'NO-CARRIER', 'M-DOWN', 'DORMANT'])

function scrub(value: unknown, parentKey = ''): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => scrub(v, parentKey))
    return parentKey === 'flags' ? items.filter((f) => typeof f !== 'string' || !VOLATILE_FLAGS.has(f)) : items
  }
  if (value && typeof value === 'object') {
    const out: IpObject = {}
    for (const key of Object.keys(value).sort()) {
      if (VOLATILE_KEYS.has(key) || key.endsWith('_timer')) continue
      // a bridge port's STP state (forwarding/disabled) follows its carrier
      if (parentKey === 'info_slave_data' && key === 'state') continue
      out[key] = scrub((value as IpObject)[key], key)
    }
    return out
  }
  return value
}

/**
 * Links (`ip -d link`), addresses flattened to one object per address (with its ifname), and
 * IPv4+IPv6 routes of every table (`ip -d route show table all`: no family, both), in the host or
 * `{ netns }` / `{ path }`, sorted and scrubbed, read by one `ip` process.
 * `select`: the part of the raw picture to keep, taken before the scrub and the sort (the host's
 * picture holds every test's links, and the sort compares whole objects by their JSON).
 */
export async function snapshot(target: { netns?: string; path?: string } = {}, select: (raw: Snapshot) => Snapshot = (raw) => raw): Promise<Snapshot> {
  const where = target.path ? { path: target.path } : target.netns
  // -d for the links' kinds; an address's own fields are the same with it, a route's gain their defaults (type, table, ...)
  const [links, addrObjs, routes] = (await ipBatchJson(['link show', 'addr show', 'route show table all'], where, ['-d'])) as [IpObject[], IpObject[], IpObject[]]
  const addrs = addrObjs.flatMap((l) => ((l.addr_info ?? []) as IpObject[]).map((a) => ({ ifname: l.ifname as string, ...a })))
  const kept = select({ links, addrs, routes })
  const scrubbedSorted = (objs: IpObject[]): IpObject[] =>
    objs
      .map((o) => scrub(o) as IpObject)
      .map((o) => [JSON.stringify(o), o] as const)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
      .map(([, o]) => o)
  return { links: scrubbedSorted(kept.links), addrs: scrubbedSorted(kept.addrs), routes: scrubbedSorted(kept.routes) }
}

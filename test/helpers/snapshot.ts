// A normalised picture of a netns's links, addresses and routes (from `ip -j`), for asserting that
// an operation that failed or was undone left everything as it was: t.deepEqual(before, after).

import { ipJson } from './netns.js'
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

const byJson = (a: unknown, b: unknown): number => {
  const x = JSON.stringify(a)
  const y = JSON.stringify(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/**
 * Links (`ip -d link`), addresses flattened to one object per address (with its ifname), and
 * IPv4+IPv6 routes of every table, in the host or `{ netns }` / `{ path }`, sorted and scrubbed.
 */
export async function snapshot(target: { netns?: string; path?: string } = {}): Promise<Snapshot> {
  const where = target.path ? { path: target.path } : target.netns
  const [links, addrObjs, routes4, routes6] = await Promise.all([
    ipJson(['-d', 'link', 'show'], where),
    ipJson(['addr', 'show'], where),
    ipJson(['-4', 'route', 'show', 'table', 'all'], where),
    ipJson(['-6', 'route', 'show', 'table', 'all'], where),
  ])
  const addrs = addrObjs.flatMap((l) => ((l.addr_info ?? []) as IpObject[]).map((a) => ({ ifname: l.ifname as string, ...a })))
  return {
    links: (links.map((l) => scrub(l)) as IpObject[]).sort(byJson),
    addrs: (addrs.map((a) => scrub(a)) as IpObject[]).sort(byJson),
    routes: ([...routes4, ...routes6].map((r) => scrub(r)) as IpObject[]).sort(byJson),
  }
}

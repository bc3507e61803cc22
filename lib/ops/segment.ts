// Who already uses an address on a bridge's segment: the guests on its other ports and the bridge
// itself, found from the host without opening any guest (an address given twice on one L2
// segment is a conflict, exit 4, naming its holder).

import { PlumbError, conflict } from '../errors.js'
import { errnoOf } from '../kernel/index.js'
import type { AddrInfo, LinkInfo, NetHandle } from '../kernel/types.js'
import { parseMark } from '../parse/index.js'
import type { StaticIp } from './guest-config.js'

export interface AddressHolder {
  /** the address as asked for */
  cidr: string
  /** who has it: 'docker:web eth1 (port pl3fa2c91b)', 'the bridge br0 itself', 'the guest behind port veth12 (netns id 3)' */
  holder: string
}

/**
 * The wanted addresses already on the segment of a bridge whose host-side ports are `ports`
 * (a Linux bridge's: `getLinks({ master })`; an OVS bridge's: its port rows' links). A port is a
 * veth whose peer sits in another netns, named by IFLA_LINK_NETNSID (the peer's ifindex is
 * IFLA_LINK): one address dump per such netns (IFA_TARGET_NETNSID, read-only), sent at once.
 * `own` adds the addresses of a host link on the segment itself (a Linux bridge, an OVS bridge's
 * local port, a macvlan's parent), `holder` naming it. Only the address is compared (a /24 and
 * a /16 of one address collide all the same).
 */
export async function addressHolders(hostNs: NetHandle, wanted: StaticIp[], own: { index: number; holder: string } | undefined, ports: LinkInfo[]): Promise<AddressHolder[]> {
  if (wanted.length === 0) return []
  // The other end of each veth port: in another netns (IFLA_LINK_NETNSID), or in the host's own
  // (no netns id; a veth pair standing in for a NIC, say). A NIC or a tap has no other end.
  const byNsid = new Map<number | 'host', LinkInfo[]>()
  for (const p of ports) {
    if (p.link === undefined || p.link === p.index) continue
    const key = p.linkNetnsId ?? 'host'
    byNsid.set(key, [...(byNsid.get(key) ?? []), p])
  }
  // Each dump asks (strict checking) for just what can matter: the wanted family, and the peer's
  // own interface when it is the port's only one there, so a guest's lo, link-locals and other
  // interfaces never cross: one small reply per port on a bridge of a hundred guests.
  const families = new Set(wanted.map((w) => w.family))
  const family = families.size === 1 ? { family: wanted[0]!.family } : {}
  const [ownAddrs, ...peers] = await Promise.all([
    own ? hostNs.getAddrs({ index: own.index, ...family }) : Promise.resolve([] as AddrInfo[]),
    ...[...byNsid].map(([netnsId, nsPorts]) => {
      const index = nsPorts.length === 1 ? { index: nsPorts[0]!.link! } : {}
      return peerAddrs(hostNs, netnsId, { ...index, ...family })
    }),
  ])
  const found: AddressHolder[] = []
  const held = (addrs: AddrInfo[], w: StaticIp): boolean => addrs.some((a) => a.family === w.family && a.address === w.address)
  for (const w of wanted) {
    if (own && held(ownAddrs!, w)) {
      found.push({ cidr: w.cidr, holder: own.holder })
      continue
    }
    let i = 0
    for (const [netnsId, nsPorts] of byNsid) {
      const addrs = peers[i++]!
      const port = nsPorts.find((p) => held(addrs.filter((a) => a.index === p.link), w))
      if (port) {
        found.push({ cidr: w.cidr, holder: describeHolder(port, netnsId) })
        break
      }
    }
  }
  return found
}

/**
 * The addresses behind a port (its peer's netns, or the host's own). A port going away while we
 * look holds none: EINVAL is the kernel's answer for a netns id that names no live netns (a
 * container restarting: the kernel tears a dead netns down asynchronously, its veths last; seen
 * with 20 containers restarted at once), ENODEV for a peer interface deleted since the ports were
 * listed (a concurrent detach: the dump asks for that interface alone).
 */
async function peerAddrs(hostNs: NetHandle, netnsId: number | 'host', filter: { index?: number; family?: 4 | 6 }): Promise<AddrInfo[]> {
  try {
    return await hostNs.getAddrs({ ...(netnsId === 'host' ? {} : { netnsId }), ...filter })
  } catch (err) {
    const errno = err instanceof PlumbError ? errnoOf(err.cause) : undefined
    if (errno === 'EINVAL' || errno === 'ENODEV') return []
    throw err
  }
}

/** The guest behind a port, from plumb's mark on the host end when it carries one. */
function describeHolder(port: LinkInfo, netnsId: number | 'host'): string {
  const m = parseMark(port.alias)
  if (m?.guest) return `${m.guest}${m.ifname ? ` ${m.ifname}` : ''} (port ${port.name})`
  return netnsId === 'host' ? `the host's end of port ${port.name}` : `the guest behind port ${port.name} (netns id ${netnsId})`
}

/** Exit 4 when any wanted address is already used on the segment. */
export function refuseHeld(found: AddressHolder[], where: string): void {
  if (found.length === 0) return
  const list = found.map((f) => `${f.cidr.split('/')[0]} is used by ${f.holder}`).join('; ')
  throw conflict(`address already in use on ${where}: ${list}`, 'give each guest on a segment its own address (see plumb ls), or detach the holder first')
}

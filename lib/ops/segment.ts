// Who already uses an address on a bridge's segment: the guests on its other ports and the bridge
// itself, found from the host without opening any guest (an address given twice on one L2
// segment is a conflict, exit 4, naming its holder).

import { PlumbError, conflict } from '../errors.js'
import { errnoOf } from '../kernel/index.js'
import type { Family, LinkInfo, NetHandle } from '../kernel/types.js'
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
 * (a Linux bridge's: the host handle's `portsOf`, one dump the first time a bridge is checked and
 * the kernel's link notifications after, lib/kernel/port-cache.ts; an OVS bridge's: its port rows'
 * links). A port is a veth whose peer sits in another netns, named by IFLA_LINK_NETNSID (the
 * peer's ifindex is IFLA_LINK), or in the host's own (no netns id: a veth pair standing in for a
 * NIC, say); a NIC or a tap has no other end. `own` adds the addresses of a host link on the segment itself (a
 * Linux bridge, an OVS bridge's local port, a macvlan's parent), `holder` naming it. Each peer's
 * addresses of the wanted family come from the host handle's address cache (`addressesOf`: one
 * dump, IFA_TARGET_NETNSID and read-only, the first time a peer is seen; the kernel's
 * notifications after), so the n-th attach to a bridge does not re-read the guests before it.
 * Only the address is compared (a /24 and a /16 of one address collide all the same).
 */
export async function addressHolders(hostNs: NetHandle, wanted: StaticIp[], own: { index: number; holder: string } | undefined, ports: LinkInfo[]): Promise<AddressHolder[]> {
  if (wanted.length === 0) return []
  const families = [...new Set(wanted.map((w) => w.family))]
  const { holders, links, addrs } = await segmentAddresses(hostNs, own, ports, families)
  const found: AddressHolder[] = []
  for (const w of wanted) {
    const i = links.findIndex((l, k) => l.family === w.family && addrs[k]!.has(w.address))
    if (i >= 0) found.push({ cidr: w.cidr, holder: holders[Math.floor(i / families.length)]!.holder() })
  }
  return found
}

/**
 * Read a Linux bridge's ports and their guests' addresses of `families` into `hostNs`'s caches
 * now, for this process's next attach to it (addressHolders then finds them there): the CNI
 * plugin starts it beside its IPAM call, whose wait it fills (a dump per guest, ~50 us each: ~2.4
 * ms of an ADD with 50 pods on the bridge). As fresh as reading them later: the caches hear the
 * kernel's notifications of what changes after their dumps. What fails here is the op's to meet
 * when it reads again, not the prefetch's. Each read is answered in the call that sends it: what
 * the caller wants started first (a spawn) must be started before this is called.
 */
export function prefetchSegment(hostNs: NetHandle, bridge: string, families: readonly Family[]): void {
  const read = async (): Promise<void> => {
    const br = await hostNs.getLink(bridge)
    if (!br || br.kind !== 'bridge') return // OVS, or made by the op: nothing cached to gain
    await segmentAddresses(hostNs, { index: br.index, holder: '' }, await hostNs.portsOf(br.index), families)
  }
  read().catch(() => undefined)
}

interface Holder {
  holder: () => string
  index: number
  netnsId: number | undefined
}

/**
 * The segment's members (`own` and the other end of each port) and each one's addresses of
 * `families` from the host handle's address cache: `links[k]` (member `holders[k / families.length]`)
 * has `addrs[k]`.
 */
async function segmentAddresses(hostNs: NetHandle, own: { index: number; holder: string } | undefined, ports: LinkInfo[], families: readonly Family[]): Promise<{ holders: Holder[]; links: Array<{ index: number; family: Family; netnsId?: number }>; addrs: Array<ReadonlySet<string>> }> {
  const holders = segmentMembers(own, ports)
  const links = holderLinks(holders, families)
  return { holders, links, addrs: await known(hostNs.addressesOf(links)) }
}

/** Who may hold an address on the segment (its members): `own` (a host link on it) and the other end of each port that has one. */
function segmentMembers(own: { index: number; holder: string } | undefined, ports: LinkInfo[]): Holder[] {
  const peers = ports.filter((p) => p.link !== undefined && p.link !== p.index)
  return [...(own ? [{ holder: () => own.holder, index: own.index, netnsId: undefined }] : []), ...peers.map((p) => ({ holder: () => describeHolder(p), index: p.link!, netnsId: p.linkNetnsId }))]
}

/** The address lookups of `holders`, one per family, holder by holder. */
function holderLinks(holders: Holder[], families: readonly Family[]): Array<{ index: number; family: Family; netnsId?: number }> {
  const links: Array<{ index: number; family: Family; netnsId?: number }> = []
  for (const h of holders) for (const family of families) links.push(h.netnsId === undefined ? { index: h.index, family } : { index: h.index, family, netnsId: h.netnsId })
  return links
}

/** The answers of addressesOf (a fresh array, filled in place): those the cache knew as they are, the reads in flight awaited (through `gone`); no promise per known one (a segment of 100 guests is 100 lookups an attach). */
async function known(answers: Array<ReadonlySet<string> | Promise<ReadonlySet<string>>>): Promise<Array<ReadonlySet<string>>> {
  const out = answers as Array<ReadonlySet<string>>
  const reads: Array<Promise<void>> = []
  answers.forEach((a, k) => {
    if (a instanceof Promise) reads.push(gone(a).then((set) => void (out[k] = set)))
  })
  await Promise.all(reads)
  return out
}

/**
 * A link on the segment going away while we look holds no address: EINVAL is the kernel's
 * answer for a netns id that names no live netns (a container restarting: the kernel tears a
 * dead netns down asynchronously, its veths last; seen with 20 containers restarted at once),
 * ENODEV for a peer interface deleted since the ports were listed (a concurrent detach).
 */
async function gone(read: ReadonlySet<string> | Promise<ReadonlySet<string>>): Promise<ReadonlySet<string>> {
  try {
    return await read
  } catch (err) {
    const errno = err instanceof PlumbError ? errnoOf(err.cause) : undefined
    if (errno === 'EINVAL' || errno === 'ENODEV') return new Set()
    throw err
  }
}

/** The guest behind a port, from plumb's mark on the host end when it carries one. */
function describeHolder(port: LinkInfo): string {
  const m = parseMark(port.alias)
  if (m?.guest) return `${m.guest}${m.ifname ? ` ${m.ifname}` : ''} (port ${port.name})`
  return port.linkNetnsId === undefined ? `the host's end of port ${port.name}` : `the guest behind port ${port.name} (netns id ${port.linkNetnsId})`
}

/** Exit 4 when any wanted address is already used on the segment. */
export function refuseHeld(found: AddressHolder[], where: string): void {
  if (found.length === 0) return
  const list = found.map((f) => `${f.cidr.split('/')[0]} is used by ${f.holder}`).join('; ')
  throw conflict(`address already in use on ${where}: ${list}`, 'give each guest on a segment its own address (see plumb ls), or detach the holder first')
}

// The `dhcp` IP spec of the link ops (a real client in the guest's netns, started inside the
// op's transaction) and the lease teardown detach runs: what the link ops and the dhcp op share.

import { conflict, usageError } from '../errors.js'
import { parseSeconds } from '../parse/index.js'
import type { GuestRef, IpSpec } from '../parse/index.js'
import type { LeaseState } from '../dhcp/index.js'
import { startedIn } from '../dhcp/state.js'
import type { Netns } from '../guest/index.js'
import type { GuestContext } from './context.js'
import { cookieOf } from './context.js'
import type { OpResult } from './result.js'
import type { Tx } from './tx.js'

export type DhcpClient = 'auto' | 'udhcpc' | 'dhclient' | 'dhcpcd'

/** Whether a link op's IP specs ask for a lease. */
export const asksDhcp = (ips: readonly IpSpec[]): boolean => ips.some((ip) => ip.kind === 'dhcp')

export interface DhcpLeaseOptions {
  client?: DhcpClient
  /** seconds to wait for a lease (a number, or its decimal text); default 10 */
  timeout?: number | string
  hostname?: string
  /** write the offered DNS servers into the guest's own /etc/resolv.conf */
  resolv?: boolean
}

/** The lease options alone (the dhcp op's flags, and the link commands' dhcp spec): pure, before anything runs. */
export function validateLeaseOptions(o: DhcpLeaseOptions, flag: { client: string; timeout: string } = { client: '--client', timeout: '--timeout' }): DhcpClient {
  const client = o.client ?? 'auto'
  if (!CLIENTS.includes(client)) throw usageError(`unknown DHCP client "${client}" (${flag.client})`, `one of ${CLIENTS.join(', ')}`)
  leaseTimeout(o, flag.timeout)
  if (o.hostname !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(o.hostname)) {
    throw usageError(`"${o.hostname}" is not a valid hostname`, 'letters, digits and dashes, dot-separated')
  }
  return client
}

/**
 * A link op's dhcp options: valid, and only given with the `dhcp` IP spec (a --resolv or
 * --hostname beside static addresses would otherwise be silently ignored).
 */
export function validateLinkDhcp(guest: GuestRef, ips: IpSpec[], o: DhcpLeaseOptions | undefined): void {
  if (!o) return
  const given = (Object.keys(o) as Array<keyof DhcpLeaseOptions>).filter((k) => o[k] !== undefined && o[k] !== false)
  if (given.length === 0) return
  if (!asksDhcp(ips)) {
    throw usageError(`DHCP options (${given.join(', ')}) given without the dhcp IP spec`, 'add dhcp to the addresses, e.g. plumb attach-veth web br0 dhcp --resolv')
  }
  validateLeaseOptions(o, { client: '--dhcp-client', timeout: '--dhcp-timeout' })
  refuseResolvWithoutFs(guest, o)
}

// An `ip netns` has no filesystem of its own: known from the ref alone, so refused before the
// first step (startOptions still checks every other kind once the guest is resolved).
export function refuseResolvWithoutFs(guest: GuestRef, o: DhcpLeaseOptions): void {
  if (o.resolv && (guest.kind === 'netns' || guest.kind === 'host')) {
    throw usageError(`--resolv needs a guest with its own filesystem (a container or pid:N); ${guest.kind === 'netns' ? `netns:${guest.name}` : 'the host'} has none`)
  }
}

function startOptions(netns: Netns, ifname: string, o: DhcpLeaseOptions) {
  const mnt = netns.pid !== undefined ? `/proc/${netns.pid}/ns/mnt` : undefined
  if (o.resolv && !mnt) throw usageError(`--resolv needs a guest with its own filesystem (a container or pid:N); ${netns.label} has none`)
  return {
    nsPath: netns.path,
    guestLabel: netns.label,
    stateKey: netns.key,
    ifname,
    client: o.client ?? 'auto',
    timeoutSec: leaseTimeout(o),
    ...(o.hostname ? { hostname: o.hostname } : {}),
    resolv: o.resolv && mnt ? { mntNsPath: mnt } : (false as const),
    watch: { ...(netns.pid !== undefined ? { pid: netns.pid } : {}), path: netns.path },
  }
}

/** The `dhcp` IP spec inside a link op's transaction: a failure rolls the new interface back. */
export async function leaseInto(tx: Tx, ctx: GuestContext, ifname: string, o: DhcpLeaseOptions, result: OpResult): Promise<void> {
  const dhcp = await import('../dhcp/index.js')
  const start = startOptions(ctx.netns, ifname, o)
  tx.intend({ t: 'dhcp', stateKey: ctx.netns.key, ifname })
  const lease = await tx.step(
    // The argv enters the netns itself (nsenter --net=...): printed as is.
    dhcp.dhcpArgv(start).join(' '),
    () => dhcp.startDhcp(start),
    { line: `# stop the DHCP client of ${ctx.netns.label} ${ifname}`, run: () => dhcp.stopDhcp({ stateKey: ctx.netns.key, ifname, release: true }) },
  )
  if (lease) {
    result.lease = lease
    result.ips.push({ address: `${lease.address}/${lease.prefix}`, ...(lease.router ? { gateway: lease.router } : {}), interface: result.interfaces.findIndex((i) => i.name === ifname) })
    result.messages.push(`DHCP lease ${lease.address}/${lease.prefix}${lease.router ? ` via ${lease.router}` : ''} from ${lease.server ?? '?'} for ${lease.leaseTime} s (${lease.client}, pid ${lease.pid}, renewed for the guest's life)`)
  }
}

/** The `dhcp` IP spec of a link op, when one was given. */
export async function leaseIfAsked(tx: Tx, ctx: GuestContext, ifname: string, ips: IpSpec[], o: DhcpLeaseOptions | undefined, result: OpResult): Promise<void> {
  if (asksDhcp(ips)) await leaseInto(tx, ctx, ifname, o ?? {}, result)
}

/**
 * A DHCP state dir is this guest's netns's, not an older one's under the same key (a restarted
 * container's id; an ip netns's inode, which the kernel gives the next netns at once): by the
 * inode, and the cookie where both are known. (Its key is the caller's to match: one netns has a
 * key per name it goes by.)
 */
export function isLeaseOf(l: Pick<LeaseState, 'netnsIno' | 'netnsCookie'>, netns: Netns): boolean {
  if (l.netnsIno === undefined) return true
  const cookie = l.netnsCookie === undefined ? undefined : cookieOf(netns)
  return startedIn(l, cookie === undefined ? { ino: netns.ino } : { ino: netns.ino, cookie })
}

/** The DHCP state of each interface of this guest (its netns now, not an older one under the same key), by name. */
export async function leasesOf(netns: Netns): Promise<Map<string, LeaseState>> {
  const dhcp = await import('../dhcp/index.js')
  return new Map((await dhcp.listLeases()).filter((l) => l.stateKey === netns.key && isLeaseOf(l, netns)).map((l) => [l.ifname, l]))
}

/**
 * A re-run of a link op asking for `dhcp` on an interface it made before: the same only with that
 * interface's client running (result.lease then says what it holds). Without one it is another
 * configuration (exit 4) whose fix is the dhcp command, not a second interface.
 */
export function sameLease(netns: Netns, ifname: string, lease: LeaseState | undefined, result: OpResult): void {
  if (!lease) throw conflict(`${netns.label} ${ifname} is already attached without a DHCP client`, `start one on it: plumb dhcp ${netns.label} ${ifname}`)
  if (lease.alive === false) throw conflict(`${netns.label} ${ifname} is already attached, but its DHCP client no longer runs`, `restart it: plumb dhcp ${netns.label} ${ifname} (or let plumb gc clean its state)`)
  result.lease = lease
}

/** sameLease for a re-run whose IP specs may ask for dhcp (a no-op when they do not). */
export async function sameLeaseIfAsked(netns: Netns, ifname: string, ips: IpSpec[], result: OpResult): Promise<void> {
  if (asksDhcp(ips)) sameLease(netns, ifname, (await leasesOf(netns)).get(ifname), result)
}

/** detach: release the lease and stop the client of this interface, if there is one. */
export async function stopLeaseOf(tx: Tx, netns: Netns, ifname: string, result: OpResult): Promise<void> {
  const dhcp = await import('../dhcp/index.js')
  const leases = await dhcp.listLeases()
  if (!leases.some((l) => l.stateKey === netns.key && l.ifname === ifname)) return
  await tx.step(`# release the DHCP lease of ${netns.label} ${ifname} and stop its client`, () => dhcp.stopDhcp({ stateKey: netns.key, ifname, release: true }))
  result.messages.push(`released the DHCP lease on ${ifname}`)
}

const CLIENTS: DhcpClient[] = ['auto', 'udhcpc', 'dhclient', 'dhcpcd']

const DEFAULT_LEASE_TIMEOUT_S = 10

const MAX_LEASE_TIMEOUT_S = 3600

/** The lease wait in seconds: more than 0, at most an hour. */
const leaseTimeout = (o: DhcpLeaseOptions, flag = '--timeout'): number =>
  o.timeout === undefined ? DEFAULT_LEASE_TIMEOUT_S : parseSeconds(o.timeout, flag, { min: 0, minExclusive: true, max: MAX_LEASE_TIMEOUT_S })

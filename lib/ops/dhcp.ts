// dhcp: a real DHCP client inside the guest's netns, supervised for the guest's life; also the
// `dhcp` IP spec of the link commands, and the lease teardown detach runs.

import { notFound, usageError } from '../errors.js'
import { parseSeconds, validateIfname } from '../parse/index.js'
import type { GuestRef, IpSpec } from '../parse/index.js'
import type { Netns } from '../guest/index.js'
import { ipIn, journalFor, toGuestRef, withGuest } from './context.js'
import { ignoreGone } from './guest-config.js'
import type { CommonOptions, GuestContext } from './context.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { commonArgs, entry, persist } from './persist.js'
import { putDhcp, removeDhcp } from '../watch/record.js'
import type { Tx } from './tx.js'

export type DhcpClient = 'auto' | 'udhcpc' | 'dhclient' | 'dhcpcd'

export interface DhcpLeaseOptions {
  client?: DhcpClient
  /** seconds to wait for a lease (a number, or its decimal text); default 10 */
  timeout?: number | string
  hostname?: string
  /** write the offered DNS servers into the guest's own /etc/resolv.conf */
  resolv?: boolean
}

export interface DhcpOptions extends CommonOptions, DhcpLeaseOptions {
  guest: string | GuestRef
  ifname: string
  /** send a DHCPRELEASE, stop the client, remove the address */
  release?: boolean
}

const CLIENTS: DhcpClient[] = ['auto', 'udhcpc', 'dhclient', 'dhcpcd']
const DEFAULT_LEASE_TIMEOUT_S = 10
const MAX_LEASE_TIMEOUT_S = 3600

/** The lease wait in seconds: more than 0, at most an hour. */
const leaseTimeout = (o: DhcpLeaseOptions, flag = '--timeout'): number =>
  o.timeout === undefined ? DEFAULT_LEASE_TIMEOUT_S : parseSeconds(o.timeout, flag, { min: 0, minExclusive: true, max: MAX_LEASE_TIMEOUT_S })

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
  if (!ips.some((ip) => ip.kind === 'dhcp')) {
    throw usageError(`DHCP options (${given.join(', ')}) given without the dhcp IP spec`, 'add dhcp to the addresses, e.g. plumb attach-veth web br0 dhcp --resolv')
  }
  validateLeaseOptions(o, { client: '--dhcp-client', timeout: '--dhcp-timeout' })
  refuseResolvWithoutFs(guest, o)
}

// An `ip netns` has no filesystem of its own: known from the ref alone, so refused before the
// first step (startOptions still checks every other kind once the guest is resolved).
function refuseResolvWithoutFs(guest: GuestRef, o: DhcpLeaseOptions): void {
  if (o.resolv && (guest.kind === 'netns' || guest.kind === 'host')) {
    throw usageError(`--resolv needs a guest with its own filesystem (a container or pid:N); ${guest.kind === 'netns' ? `netns:${guest.name}` : 'the host'} has none`)
  }
}

export function validateDhcp(o: DhcpOptions) {
  const client = validateLeaseOptions(o)
  const guest = toGuestRef(o.guest)
  if (!o.release) refuseResolvWithoutFs(guest, o)
  return { guest, ifname: validateIfname(o.ifname), client }
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
  if (ips.some((ip) => ip.kind === 'dhcp')) await leaseInto(tx, ctx, ifname, o ?? {}, result)
}

/** detach: release the lease and stop the client of this interface, if there is one. */
export async function stopLeaseOf(tx: Tx, netns: Netns, ifname: string, result: OpResult): Promise<void> {
  const dhcp = await import('../dhcp/index.js')
  const leases = await dhcp.listLeases()
  if (!leases.some((l) => l.stateKey === netns.key && l.ifname === ifname)) return
  await tx.step(`# release the DHCP lease of ${netns.label} ${ifname} and stop its client`, () => dhcp.stopDhcp({ stateKey: netns.key, ifname, release: true }))
  result.messages.push(`released the DHCP lease on ${ifname}`)
}

export async function dhcp(opts: DhcpOptions): Promise<OpResult> {
  const v = validateDhcp(opts)
  return withGuest(v.guest, opts, async (ctx) => {
    const result = emptyResult(opts.release ? 'dhcp --release' : 'dhcp', ctx.netns.label, opts.dryRun ?? false)
    const link = await ctx.guestNs.getLink(v.ifname)
    if (!link) throw notFound(`no interface "${v.ifname}" in ${ctx.netns.label}`, `create one first, e.g. plumb attach-veth ${ctx.netns.label} BRIDGE dhcp`)
    result.interfaces.push({ name: link.name, ...(link.mac ? { mac: link.mac } : {}), mtu: link.mtu, netns: ctx.netns.label, kind: link.kind ?? 'device' })
    const mod = await import('../dhcp/index.js')
    // A lease of an older netns under the same key (the container restarted) is not this one's:
    // startDhcp stops that leftover client instead of calling this one leased.
    const existing = (await mod.listLeases()).find((l) => l.stateKey === ctx.netns.key && l.ifname === v.ifname && (l.netnsIno === undefined || l.netnsIno === ctx.netns.ino))
    return runTx({ ...opts, journal: journalFor('dhcp', ctx.netns) }, async (tx) => {
      if (opts.release) {
        if (!existing) {
          result.messages.push(`no DHCP client runs for ${ctx.netns.label} ${v.ifname}: nothing to release`)
          return result
        }
        await stopLeaseOf(tx, ctx.netns, v.ifname, result)
        result.changed = true
      } else if (existing && existing.alive !== false) {
        result.lease = existing
        result.messages.push(`already leased: ${ctx.netns.label} ${v.ifname} has ${existing.address ?? '?'} (client pid ${existing.pid}); nothing changed`)
      } else {
        // A client needs the link up; a failed lease leaves it down again, as it was.
        if (!link.up) {
          await tx.step(ipIn(ctx.netns, `link set ${v.ifname} up`), () => ctx.guestNs.setLink(link.index, { up: true }), {
            line: ipIn(ctx.netns, `link set ${v.ifname} down`),
            run: () => ignoreGone(ctx.guestNs.setLink(link.index, { up: false })),
          })
        }
        await leaseInto(tx, ctx, v.ifname, opts, result)
        result.changed = true
      }
      await persist(tx, opts, result, [
        {
          netns: ctx.netns,
          edit: opts.release
            ? (r) => removeDhcp(r, v.ifname)
            : (r) => putDhcp(r, entry('dhcp', { ifname: v.ifname, client: opts.client, timeout: opts.timeout, hostname: opts.hostname, resolv: opts.resolv || undefined, ...commonArgs(opts) })),
        },
      ])
      result.plan = tx.lines
      return result
    })
  })
}

// dhcp: a real DHCP client inside the guest's netns, supervised for the guest's life (the link
// commands' `dhcp` IP spec shares its lease steps: ./lease.ts).

import { notFound } from '../errors.js'
import { validateIfname } from '../parse/index.js'
import type { GuestRef } from '../parse/index.js'
import { ipIn, journalFor, toGuestRef, withGuest } from './context.js'
import { ignoreGone } from './guest-config.js'
import type { CommonOptions } from './context.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { leaseInto, leasesOf, refuseResolvWithoutFs, stopLeaseOf, validateLeaseOptions } from './lease.js'
import type { DhcpLeaseOptions } from './lease.js'
import { commonArgs, entry, persist } from './persist.js'
import { putDhcp, removeDhcp } from '../watch/record.js'

export interface DhcpOptions extends CommonOptions, DhcpLeaseOptions {
  guest: string | GuestRef
  ifname: string
  /** send a DHCPRELEASE, stop the client, remove the address */
  release?: boolean
}

export function validateDhcp(o: DhcpOptions) {
  const client = validateLeaseOptions(o)
  const guest = toGuestRef(o.guest)
  if (!o.release) refuseResolvWithoutFs(guest, o)
  return { guest, ifname: validateIfname(o.ifname), client }
}

export async function dhcp(opts: DhcpOptions): Promise<OpResult> {
  const v = validateDhcp(opts)
  return withGuest(v.guest, opts, async (ctx) => {
    const result = emptyResult(opts.release ? 'dhcp --release' : 'dhcp', ctx.netns.label, opts.dryRun ?? false)
    const link = await ctx.guestNs.getLink(v.ifname)
    if (!link) throw notFound(`no interface "${v.ifname}" in ${ctx.netns.label}`, `create one first, e.g. plumb attach-veth ${ctx.netns.label} BRIDGE dhcp`)
    result.interfaces.push({ name: link.name, ...(link.mac ? { mac: link.mac } : {}), mtu: link.mtu, netns: ctx.netns.label, kind: link.kind ?? 'device' })
    // A lease of an older netns under the same key (the container restarted) is not this one's:
    // startDhcp stops that leftover client instead of calling this one leased.
    const existing = (await leasesOf(ctx.netns)).get(v.ifname)
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

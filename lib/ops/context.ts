// Opens what an op works on, the guest's netns and one netlink handle on each side, and
// closes them whatever happens.

import { openHandleIn, openHostHandle } from '../kernel/index.js'
import type { NetHandle } from '../kernel/types.js'
import type { GuestRef } from '../parse/index.js'
import { parseGuestRef } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'

export interface CommonOptions {
  /** print the plan (as `ip` lines), change nothing */
  dryRun?: boolean
  /** plumb a guest whose netns is the host's own (--net=host) */
  allowHost?: boolean
  /** each step as it runs, with its time (--verbose) */
  log?: (line: string) => void
}

export interface GuestContext {
  netns: Netns
  hostNs: NetHandle
  guestNs: NetHandle
}

export function toGuestRef(guest: string | GuestRef, opts: { allowHostWord?: boolean; allowSelf?: boolean } = {}): GuestRef {
  return typeof guest === 'string' ? parseGuestRef(guest, opts) : guest
}

/** Resolve the guest, open a handle on each side, run `fn`, close everything. */
export async function withGuest<T>(ref: GuestRef, opts: CommonOptions, fn: (ctx: GuestContext) => Promise<T>): Promise<T> {
  const netns = await resolveGuest(ref, { allowHost: opts.allowHost ?? false })
  let hostNs: NetHandle | undefined
  let guestNs: NetHandle | undefined
  try {
    const host = (hostNs = openHostHandle())
    const guest = (guestNs = netns.isHost ? host : openHandleIn(netns.fd, netns.label))
    return await fn({ netns, hostNs: host, guestNs: guest })
  } finally {
    if (guestNs && guestNs !== hostNs) guestNs.close()
    hostNs?.close()
    netns.close()
  }
}

/** How a guest-side command is written in a dry-run plan. */
export function ipIn(netns: Netns, args: string): string {
  if (netns.isHost) return `ip ${args}`
  if (netns.ref.kind === 'netns') return `ip -n ${netns.ref.name} ${args}`
  return `nsenter --net=${netns.path} ip ${args}`
}

/** How a non-ip command run inside the guest is written in a plan. */
export function inGuest(netns: Netns, cmd: string): string {
  if (netns.isHost) return cmd
  if (netns.ref.kind === 'netns') return `ip netns exec ${netns.ref.name} ${cmd}`
  return `nsenter --net=${netns.path} ${cmd}`
}

/** The `netns X` argument of `ip link add ... netns X` for this guest. */
export function ipNetnsArg(netns: Netns): string {
  if (netns.ref.kind === 'netns') return netns.ref.name
  if (netns.pid !== undefined) return String(netns.pid)
  return netns.path
}

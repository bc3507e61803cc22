// Opens what an op works on, the guest's netns and one netlink handle on each side, and
// closes them whatever happens.

import { ONE_QUEUE, netnsCookie, openHandleIn, openHostHandle } from '../kernel/index.js'
import type { NetHandle } from '../kernel/types.js'
import type { GuestRef, OwnerMark } from '../parse/index.js'
import { parseGuestRef } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { journalNotEmpty } from './journal.js'
import type { JournalSpec, NsId, Where } from './journal.js'

export interface CommonOptions {
  /** print the plan (as `ip` lines), change nothing */
  dryRun?: boolean
  /** plumb a guest whose netns is the host's own (--net=host) */
  allowHost?: boolean
  /** each step as it runs, with its time (--verbose) */
  log?: (line: string) => void
  /** the lab (`plumb lab deploy`) this op works for: its name goes into the owner marks it writes */
  lab?: string
  /** netlink handles shared by the ops of one run (see HandlePool); the op then opens none of its own */
  handles?: HandlePool
  /**
   * record what the op did to a Docker/Podman container, for `replay` and `watch` after a restart
   * (lib/ops/persist.ts); default true. false: --no-persist, and replay itself (it re-applies the record).
   */
  persist?: boolean
}

/**
 * One netlink handle per netns, shared by many ops of one run (a lab deploy's 60 links): a
 * handle costs a socket, ~1-2 ms of CPU to make on a busy machine, and the ops would open ~3 each.
 * Their requests share the socket (each sent and answered in one call: lib/kernel/socket.ts), each
 * op's in its own order. The pool closes them all at the end of the run.
 */
export class HandlePool {
  private readonly open = new Map<string, NetHandle>()

  host(): NetHandle {
    return processHostHandle()
  }

  /** The handle of this netns (the host's when it is the host's). */
  in(netns: Netns): NetHandle {
    if (netns.isHost) return this.host()
    const key = `${netns.dev}:${netns.ino}`
    let h = this.open.get(key)
    if (!h) this.open.set(key, (h = openHandleIn(netns.fd, netns.label)))
    return h
  }

  close(): void {
    for (const h of this.open.values()) h.close()
    this.open.clear()
  }
}

let processHost: NetHandle | undefined

/**
 * The process's own netns's handle, opened on first use and shared by every op for the
 * process's life: a socket per op was ~0.1-0.2 ms of a ~2.5 ms library attach. Each request is
 * sent and answered in one call (lib/kernel/socket.ts), so concurrent ops never interleave on it.
 * A bare fd: it keeps no process alive. Never closed.
 */
export function processHostHandle(): NetHandle {
  processHost ??= openHostHandle()
  return processHost
}

interface Held {
  h: NetHandle
  /** closes the handle if the op opened it; a shared one stays open */
  release: () => void
}
const own = (h: NetHandle): Held => ({ h, release: () => h.close() })
const shared = (h: NetHandle): Held => ({ h, release: () => undefined })

/** A handle on `netns` for one op: the run's shared one, the op's host handle for the host, or one of its own. */
export function handleFor(netns: Netns, opts: CommonOptions, host: NetHandle): Held {
  if (opts.handles) return shared(opts.handles.in(netns))
  return netns.isHost ? shared(host) : own(openHandleIn(netns.fd, netns.label))
}

/** An owner mark with the lab's name in it (`lab=NAME`) when the op works for a lab. */
export function withLab(mark: OwnerMark, opts: CommonOptions): OwnerMark {
  return opts.lab === undefined ? mark : { ...mark, extra: { ...mark.extra, lab: opts.lab } }
}

/** The `lab=NAME` of a firewall mark (lib/parse/rule-mark.ts) when the op works for a lab: the lab's deploy and destroy find its `nat:` rules by it. */
export function labField(opts: CommonOptions): { lab?: string } {
  return opts.lab === undefined ? {} : { lab: opts.lab }
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
  let guest: Held | undefined
  try {
    // the process's shared host handle: never closed
    const hostNs = processHostHandle()
    guest = handleFor(netns, opts, hostNs)
    const recovered = await recoverFor(hostNs, netns, opts)
    const result = await fn({ netns, hostNs, guestNs: guest.h })
    if (recovered.length && isResult(result)) result.messages.unshift(...recovered)
    return result
  } finally {
    guest?.release()
    netns.close()
  }
}

const FINISHED = 'finished an interrupted plumb first:'

/**
 * Finish what a killed plumb left on this guest (its journal entries, see ./recover.ts) before
 * reading the guest: a rerun of the killed command then converges instead of making eth2 beside
 * an unmarked eth1. One readdir when nothing was interrupted.
 */
export async function recoverFor(hostNs: NetHandle, netns: NsId | Netns, opts: { dryRun?: boolean }): Promise<string[]> {
  if (!journalNotEmpty()) return []
  const { recoverInterrupted } = await import('./recover.js')
  // a guest's cookie too: an entry of an older netns that had its inode is not this guest's
  const guest: NsId = 'fd' in netns && !netns.isHost ? netnsId(netns) : { dev: netns.dev, ino: netns.ino }
  const r = await recoverInterrupted({ hostNs, guest, ...(opts.dryRun ? { dryRun: true } : {}) })
  return [
    ...(r.undone.length ? [FINISHED, ...r.undone.map((l) => `  ${l}`)] : []),
    ...r.kept.map((k) => `could not finish an interrupted plumb: ${k} (plumb gc retries)`),
  ]
}

const isResult = (r: unknown): r is { messages: string[] } => typeof r === 'object' && r !== null && Array.isArray((r as { messages?: unknown }).messages)

/** A guest netns's cookie (read once: a socket made inside it), for the journal; undefined where the kernel has none. */
export function cookieOf(netns: Netns): number | undefined {
  if (!('cookie' in netns)) netns.cookie = netnsCookie(netns.fd)
  return netns.cookie
}

/** An opened guest's identity: inode, device and cookie. */
export function netnsId(netns: Netns): NsId {
  const cookie = cookieOf(netns)
  return { dev: netns.dev, ino: netns.ino, ...(cookie === undefined ? {} : { cookie }) }
}

/** Where a link of this guest lives, for a journal intent. */
export function whereOf(netns: Netns): Where {
  return netns.isHost ? { ns: 'host' } : { ns: 'guest', path: netns.path, ...netnsId(netns) }
}

/** The journal spec of an op on these guests. */
export function journalFor(op: string, ...guests: Netns[]): JournalSpec {
  return { op, guests: guests.map((g) => (g.isHost ? { dev: g.dev, ino: g.ino } : { ...netnsId(g), path: g.path })) }
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

/** A veth end's queue arguments in a plan: the kernel layer creates every veth end so (createVeth). */
export const VETH_QUEUES = `numtxqueues ${ONE_QUEUE.numTxQueues} numrxqueues ${ONE_QUEUE.numRxQueues}`

/** The `netns X` argument of `ip link add ... netns X` for this guest. */
export function ipNetnsArg(netns: Netns): string {
  if (netns.ref.kind === 'netns') return netns.ref.name
  if (netns.pid !== undefined) return String(netns.pid)
  return netns.path
}

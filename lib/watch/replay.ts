// replay: re-apply a container's record (lib/watch/record.ts) after it restarted (a new netns,
// everything plumb made in the old one gone): each entry's op again, in order, with the names,
// addresses, MACs and host ends it had. Every op is idempotent, so what is still there (a
// container that did not restart, a replay run twice) is left alone and says "already".

import { PlumbError, asPlumbError, usageError } from '../errors.js'
import { errnoOf } from '../kernel/index.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { parseGuestRef, parseMark } from '../parse/index.js'
import type { GuestRef } from '../parse/index.js'
import { guestVerdict, resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { HandlePool, toGuestRef } from '../ops/context.js'
import type { CommonOptions } from '../ops/context.js'
import { ignoreGone } from '../ops/guest-config.js'
import { emptyResult } from '../ops/result.js'
import type { OpResult } from '../ops/result.js'
import { attachVeth } from '../ops/attach-veth.js'
import type { AttachVethOptions } from '../ops/attach-veth.js'
import { ovsPort } from '../ops/ovs-port.js'
import type { OvsPortOptions } from '../ops/ovs-port.js'
import { macvlan } from '../ops/macvlan.js'
import type { MacvlanOptions } from '../ops/macvlan.js'
import { vlan } from '../ops/vlan.js'
import type { VlanOptions } from '../ops/vlan.js'
import { p2pLink } from '../ops/p2p-link.js'
import type { P2pLinkOptions } from '../ops/p2p-link.js'
import { moveDev } from '../ops/move-dev.js'
import type { MoveDevOptions } from '../ops/move-dev.js'
import { setIp } from '../ops/set-ip.js'
import type { SetIpOptions } from '../ops/set-ip.js'
import { dhcp } from '../ops/dhcp.js'
import type { DhcpOptions } from '../ops/dhcp.js'
import { sysctl } from '../ops/sysctl.js'
import type { SysctlOptions } from '../ops/sysctl.js'
import { names } from '../ops/names.js'
import type { NamesOptions } from '../ops/names.js'
import { expose } from '../ops/expose.js'
import type { ExposeOptions } from '../ops/expose.js'
import { containerRef, entryIfname, p2pPeer } from './record.js'
import type { ContainerRecord, RecordEntry, RecordedOp } from './record.js'
import { loadRecord, recordPath } from './store.js'

export interface ReplayOptions extends Omit<CommonOptions, 'persist'> {
  /** a Docker or Podman container (records are kept by container id) */
  guest: string | GuestRef
}

/** What one entry of the record did this time. */
export interface ReplayedEntry {
  op: RecordedOp
  /** the guest-side interface it is about, when it is about one */
  ifname?: string
  /**
   * made: the op changed something (it was not there); already: it was there; waiting: a p2p
   * link whose other container is not running (made when that one starts); failed: see error.
   */
  outcome: 'made' | 'already' | 'waiting' | 'failed'
  message: string
  /** the op's steps, as `ip`/`ovs-vsctl` lines */
  plan?: string[]
  error?: ReturnType<PlumbError['toJSON']>
}

export interface ReplayResult extends OpResult {
  /** the record file replayed ('' when the container has none) */
  record: string
  entries: ReplayedEntry[]
  /** leftovers of the container's previous netns removed first (lines as `ip`/`ovs-vsctl` would do them) */
  cleared: string[]
}

/** Some entries failed: the others were still replayed. `result` says what each did. */
export class ReplayError extends PlumbError {
  constructor(
    readonly result: ReplayResult,
    first: PlumbError,
  ) {
    const failed = result.entries.filter((e) => e.outcome === 'failed')
    super(first.code, `replay of ${result.guest}: ${failed.length} of ${result.entries.length} recorded entries failed: ${failed.map((e) => `${e.ifname ? `${e.ifname} ` : ''}${e.op}: ${e.error?.message ?? e.message}`).join('; ')}`, {
      ...(first.hint ? { hint: first.hint } : {}),
      cause: first,
    })
    this.name = 'ReplayError'
  }
}

type Run = (args: Record<string, unknown>, common: CommonOptions & { guest?: GuestRef }) => Promise<OpResult>

// Each entry's args are the op's own options (as it ran, resolved): the op validates them again.
const OPS: Record<RecordedOp, Run> = {
  'attach-veth': (a, c) => attachVeth({ ...a, ...c } as AttachVethOptions),
  'ovs-port': (a, c) => ovsPort({ ...a, ...c } as OvsPortOptions),
  macvlan: (a, c) => macvlan({ ...a, ...c } as MacvlanOptions),
  vlan: (a, c) => vlan({ ...a, ...c } as VlanOptions),
  'move-dev': (a, c) => moveDev({ ...a, ...c } as MoveDevOptions),
  'set-ip': (a, c) => setIp({ ...a, ...c } as SetIpOptions),
  dhcp: (a, c) => dhcp({ ...a, ...c } as DhcpOptions),
  sysctl: (a, c) => sysctl({ ...a, ...c } as SysctlOptions),
  names: (a, c) => names({ ...a, ...c } as NamesOptions),
  expose: (a, c) => expose({ ...a, ...c } as ExposeOptions),
  // both sides are in the args (a and b): no guest of the replay's own
  'p2p-link': (a, { guest: _guest, ...c }) => p2pLink({ ...a, ...c } as unknown as P2pLinkOptions),
}

// Two containers of one p2p link starting together both replay it: one at a time, the second
// then finds it made ("already") instead of racing the first to the same names.
const pairLocks = new Map<string, Promise<unknown>>()
async function onePairAtATime<T>(e: RecordEntry, fn: () => Promise<T>): Promise<T> {
  const key = [String(e.args.a), String(e.args.b), String(e.args.ifnameA), String(e.args.ifnameB)].join('|')
  const before = pairLocks.get(key) ?? Promise.resolve()
  const mine = before.then(fn, fn)
  const tail = mine.catch(() => undefined)
  pairLocks.set(key, tail)
  try {
    return await mine
  } finally {
    if (pairLocks.get(key) === tail) pairLocks.delete(key)
  }
}

/**
 * Replay the record of one running container. Entries run in the order they were recorded, each
 * as its op's own transaction (a failed one is rolled back and reported; the others still run).
 * Rejects with a ReplayError when any entry failed, with a PlumbError when the container cannot
 * be replayed at all (not running, not a container, an unreadable record).
 */
export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const ref = toGuestRef(opts.guest)
  if (ref.kind !== 'container') {
    throw usageError(`replay takes a Docker or Podman container, not ${ref.kind === 'netns' ? `netns:${ref.name}` : `a ${ref.kind}`}`, 'plumb records what it does to containers (by container id) and replays that; an ip netns or a pid does not restart')
  }
  const pool = opts.handles ?? new HandlePool()
  try {
    const netns = await resolveGuest(ref, { allowHost: opts.allowHost ?? false })
    try {
      return await replayIn(netns, { ...opts, handles: pool })
    } finally {
      netns.close()
    }
  } finally {
    if (!opts.handles) pool.close()
  }
}

async function replayIn(netns: Netns, opts: ReplayOptions & { handles: HandlePool }): Promise<ReplayResult> {
  const c = netns.container
  if (!c) throw usageError(`${netns.label} is not a container: nothing of it is recorded`)
  const result: ReplayResult = { ...emptyResult('replay', netns.label, opts.dryRun ?? false), record: '', entries: [], cleared: [] }
  let record: ContainerRecord | undefined
  try {
    record = loadRecord(c.engine, c.id)
  } catch (err) {
    throw new PlumbError('FAILED', asPlumbError(err).message, { hint: `it is skipped; remove it (rm ${recordPath(c.engine, c.id)}) and plumb the container again`, cause: err })
  }
  if (!record || record.entries.length === 0) {
    result.messages.push(`nothing recorded for ${netns.label}: nothing to replay`)
    return result
  }
  result.record = recordPath(c.engine, c.id)
  const self = containerRef(c.engine, c.id)
  const guest: GuestRef = { kind: 'container', engine: c.engine, name: c.id }
  const common = {
    ...(opts.dryRun ? { dryRun: true } : {}),
    ...(opts.allowHost ? { allowHost: true } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    handles: opts.handles,
    // the record is what is being replayed: the ops must not write it again
    persist: false,
  }
  const peers = await peersOf(record, self)
  try {
    result.cleared = await clearLeftovers(opts.handles, netns, record, self, peers, opts.dryRun ?? false)
    for (const e of record.entries) {
      const ifname = entryIfname(e, self)
      const done = await replayEntry(e, { ...common, guest }, self, peers)
      result.entries.push({ op: e.op, ...(ifname !== undefined ? { ifname } : {}), ...done })
      if (done.outcome === 'made') result.changed = true
    }
  } finally {
    for (const p of peers.values()) if (p.netns) p.netns.close()
  }
  result.plan = [...result.cleared, ...result.entries.flatMap((e) => e.plan ?? [])]
  const made = result.entries.filter((e) => e.outcome === 'made').length
  result.messages.unshift(`replayed ${netns.label}: ${made} made, ${result.entries.filter((e) => e.outcome === 'already').length} already there${countOf(result, 'waiting', 'waiting for their peer')}${countOf(result, 'failed', 'failed')}`)
  for (const e of result.entries) result.messages.push(`  ${e.ifname ? `${e.ifname} ` : ''}${e.op}: ${e.outcome}: ${e.message}`)
  const failed = result.entries.find((e) => e.outcome === 'failed')
  if (failed) throw new ReplayError(result, new PlumbError(failed.error?.code ?? 'FAILED', failed.error?.message ?? failed.message, failed.error?.hint ? { hint: failed.error.hint } : {}))
  return result
}

const countOf = (r: ReplayResult, outcome: ReplayedEntry['outcome'], words: string): string => {
  const n = r.entries.filter((e) => e.outcome === outcome).length
  return n ? `, ${n} ${words}` : ''
}

/**
 * The other side of each p2p entry: its netns when it is there (a running container, an ip netns,
 * the host); `absent` when its engine or the kernel said it is not (the link waits for it);
 * `unknown` when that could not be asked (the entry fails with it: "don't know" is not "not running").
 */
type Peer = { netns?: Netns; absent?: string; unknown?: PlumbError }

async function peersOf(record: ContainerRecord, self: string): Promise<Map<string, Peer>> {
  const out = new Map<string, Peer>()
  for (const e of record.entries) {
    const peer = p2pPeer(e, self)
    if (!peer || out.has(peer.ref)) continue
    let ref: GuestRef
    try {
      ref = parseGuestRef(peer.ref, { allowHostWord: true })
    } catch (err) {
      out.set(peer.ref, { unknown: asPlumbError(err) })
      continue
    }
    try {
      out.set(peer.ref, { netns: await resolveGuest(ref, { allowHost: true }) })
    } catch (err) {
      const v = guestVerdict(err)
      out.set(peer.ref, v.state === 'gone' ? { absent: v.reason } : { unknown: v.error })
    }
  }
  return out
}

const done = (r: OpResult): Omit<ReplayedEntry, 'op' | 'ifname'> => ({
  outcome: r.changed || (r.dryRun && r.plan.length > 0) ? 'made' : 'already',
  message: r.messages.filter((m) => !m.startsWith('warning')).join('; '),
  ...(r.plan.length ? { plan: r.plan } : {}),
})

async function replayEntry(e: RecordEntry, common: CommonOptions & { guest: GuestRef }, self: string, peers: Map<string, Peer>): Promise<Omit<ReplayedEntry, 'op' | 'ifname'>> {
  try {
    if (e.op === 'p2p-link') {
      const peer = p2pPeer(e, self)
      const there = peer ? peers.get(peer.ref) : undefined
      if (there?.unknown) throw there.unknown
      if (!peer || there?.absent !== undefined) {
        return { outcome: 'waiting', message: `its other side ${peer?.ref ?? '?'} is not running (${there?.absent ?? 'not in the record'}): the link is made when it starts` }
      }
      const r = await onePairAtATime(e, () => OPS[e.op](e.args, common))
      return done(r)
    }
    return done(e.op === 'macvlan' ? await whileMacHeld(() => OPS[e.op](e.args, common)) : await OPS[e.op](e.args, common))
  } catch (err) {
    const perr = asPlumbError(err)
    return { outcome: 'failed', message: perr.message, error: perr.toJSON() }
  }
}

const MAC_HELD_MS = 3000

/**
 * A macvlan made again with its recorded MAC, retried while that MAC is held. The kernel
 * dismantles a dead netns asynchronously (150-250 ms after `docker restart` returned, measured
 * here), and until then the old netns's macvlan holds the MAC on the parent: the new one cannot
 * come up (EADDRINUSE; its op rolls it back). A veth's old end, which the replay can reach from
 * the host, is deleted instead (clearLeftovers); a macvlan in a netns nothing can enter any more
 * can only be waited for. An old netns a process keeps alive holds it for good: the error stands.
 */
async function whileMacHeld(run: () => Promise<OpResult>): Promise<OpResult> {
  const deadline = Date.now() + MAC_HELD_MS
  for (;;) {
    try {
      return await run()
    } catch (err) {
      const held = err instanceof PlumbError && (errnoOf(err.cause) === 'EADDRINUSE' || /EADDRINUSE/.test(err.message))
      if (!held || Date.now() > deadline) {
        if (held && err instanceof PlumbError) {
          throw new PlumbError(err.code, `${err.message} (for ${MAC_HELD_MS / 1000} s: another macvlan of the parent holds its MAC)`, {
            hint: "a process may keep the container's previous netns alive (and its macvlan with it): find it with ls -l /proc/*/ns/net, or give the macvlan another MAC",
            cause: err,
          })
        }
        throw err
      }
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

/**
 * Leftovers of the container's previous netns that would stand in the way of the same names.
 * A netns outlives its container while anything holds it (a process that entered it, its own
 * DHCP client for a second, a mount namespace made while it was mounted), and with it the old
 * veths: their host ends (bridge and OVS ports, a p2p end on the host) and the old ends of p2p
 * links in running peers, all under the names the replay is about to use. plumb's mark names
 * this container on each; what tells old from current is the pairing: a host end is current
 * only when its peer is this container's interface of the marked name, and that interface's
 * peer is it (a fresh netns has no such interface at all). Deleting a veth's end takes the old
 * end in the old netns with it. An OVS row left behind is ovs-port's to delete (it does, before
 * it adds the port); a DHCP client left behind is startDhcp's to stop.
 */
async function clearLeftovers(pool: HandlePool, netns: Netns, record: ContainerRecord, self: string, peers: Map<string, Peer>, dryRun: boolean): Promise<string[]> {
  const hostNs = pool.host()
  const guestNs = pool.in(netns)
  const [hostLinks, guestLinks] = await Promise.all([hostNs.getLinks(), guestNs.getLinks()])
  const paired = (end: LinkInfo, ifname: string | undefined): boolean => {
    const mine = ifname === undefined ? undefined : guestLinks.find((l) => l.name === ifname)
    return mine !== undefined && mine.link === end.index && end.link === mine.index
  }
  const stale: Array<{ ns: NetHandle; link: LinkInfo; line: string }> = []
  for (const l of hostLinks) {
    const m = parseMark(l.alias)
    if (m?.role === 'host' && m.guest === netns.label && l.kind === 'veth' && !paired(l, m.ifname)) stale.push({ ns: hostNs, link: l, line: `ip link del ${l.name}` })
  }
  for (const e of record.entries) {
    const peer = p2pPeer(e, self)
    const there = peer ? peers.get(peer.ref)?.netns : undefined
    if (!peer || !there || there.isHost) continue // the host's end is a host end: above
    const ifname = entryIfname(e, self)
    const theirNs = pool.in(there)
    for (const l of await theirNs.getLinks()) {
      const m = parseMark(l.alias)
      if (m?.op === 'p2p-link' && m.role === 'guest' && m.extra?.peerGuest === netns.label && m.peer === ifname && !paired(l, ifname)) {
        stale.push({ ns: theirNs, link: l, line: `nsenter --net=${there.path} ip link del ${l.name}` })
      }
    }
  }
  if (!dryRun) await Promise.all(stale.map((s) => ignoreGone(s.ns.delLink(s.link.index))))
  return stale.map((s) => `${s.line}  # left by ${netns.label}'s previous netns`)
}

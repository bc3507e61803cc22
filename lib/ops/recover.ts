// Finishing what a killed plumb left: the journal entries (./journal.ts) whose writer is dead
// are undone, intent by intent in reverse order, touching only what still looks like what the
// dead op made. Run by every op on a guest before it reads the guest (so a rerun converges)
// and by gc for the whole host. Anything that cannot be decided (OVS not answering, a link
// that now carries someone else's alias) keeps its entry for the next try: "don't know" never
// becomes "gone".

import { renameSync, rmSync } from 'node:fs'
import { netnsAt, netnsIdOf } from '../guest/nsfile.js'
import { closeFd, openHandleIn, openNetnsFd } from '../kernel/index.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { parseMark, ruleKey } from '../parse/index.js'
import { JOURNAL_DIR, finalEntry, heldName, heldPid, processStart, readEntryFile, readJournal, sameNs, selfIdentity, stillRunning, unheldName, writerTag } from './journal.js'
import type { GuestNs, Intent, JournalEntry, NsId, StoredEntry, Where } from './journal.js'
import { ignoreGone, restoreDefaultRoute } from './guest-config.js'
import { PlumbError } from '../errors.js'
import { removeDeadTemps } from '../write-file.js'
import { processesChildOf } from '../proc.js'

export interface RecoverOptions {
  hostNs: NetHandle
  /** only entries of an op on this guest netns (an op's own recovery); all when absent (gc) */
  guest?: NsId
  /** say what would be undone, change nothing */
  dryRun?: boolean
}

export interface RecoverReport {
  /** one line per thing undone (or, in a dry run, that would be) */
  undone: string[]
  /** entries kept, and why: the next op or gc tries again */
  kept: string[]
}

/** How long the programs a dead op started get to finish before their work is undone. */
const CHILD_WAIT_MS = 10_000

/** An entry is ours to undo: its writer is dead and it was made in this netns. */
function isStale(s: StoredEntry, hostNs: NsId): boolean {
  // A recoverer holds it: stale only once that recoverer is dead too.
  if (heldBy(s) !== undefined) return false
  return !stillRunning(s.entry.pid, s.entry.start) && sameNs(s.entry.hostNs, hostNs)
}

/** What gc says of an entry file it cannot read: never fatal, never deleted unread. */
const unreadableNote = (file: string): string => `${file}: not a journal entry plumb can read (remove it by hand once you know what it is)`

/** The live recoverer holding an entry (renamed to `.recovering.PID`), if one does. */
function heldBy(s: StoredEntry): number | undefined {
  const holder = heldPid(s.file)
  return holder !== undefined && processAlive(holder) ? holder : undefined
}

const processAlive = (pid: number): boolean => processStart(pid) !== undefined

/** How long an op waits for another plumb (a gc) to finish undoing a killed run on its guest. */
const HELD_WAIT_MS = 3 * CHILD_WAIT_MS

/**
 * Cheap when there is nothing to do: one readdir. An op on a guest whose killed run another
 * plumb (a gc, a second rerun) is undoing right now waits for that to end: going ahead, its
 * work would be undone under it by name (the same eth1, the same isolated port).
 */
export async function recoverInterrupted(opts: RecoverOptions): Promise<RecoverReport> {
  const report: RecoverReport = { undone: [], kept: [] }
  const deadline = Date.now() + HELD_WAIT_MS
  for (;;) {
    const { holder, again } = await recoverPass(opts, report)
    if ((holder === undefined && !again) || !opts.guest) return report
    if (holder !== undefined && Date.now() > deadline) {
      throw new PlumbError('FAILED', `plumb pid ${holder} is still undoing an interrupted run on this guest after ${HELD_WAIT_MS / 1000} s`, { hint: 'try again once it has finished' })
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * One pass over the journal: `holder`, the pid of a live recoverer holding an entry of opts.guest,
 * if any; `again`, another recoverer took one of them between this pass's read and its rename
 * (it may be undoing it right now: look again, and wait for it like any holder).
 */
async function recoverPass(opts: RecoverOptions, report: RecoverReport): Promise<{ holder?: number; again: boolean }> {
  // A write a kill cut short, before its rename: the step it announced never ran.
  if (!opts.dryRun) removeDeadTemps(JOURNAL_DIR)
  const { entries, unreadable } = readJournal()
  if (entries.length === 0 && unreadable.length === 0) return { again: false }
  const me = selfIdentity()
  // gc says so (an op on one guest has no business with it): never fatal, never deleted unread.
  if (!opts.guest) for (const file of unreadable) report.kept.push(unreadableNote(file))
  let holder: number | undefined
  let again = false
  for (const s of entries) {
    if (opts.guest && !s.entry.guests.some((g) => sameNs(g, opts.guest!))) continue
    if (!isStale(s, me.hostNs)) {
      const held = heldBy(s)
      if (held !== undefined && held !== process.pid) holder = held
      continue
    }
    if (opts.dryRun) {
      report.undone.push(...s.entry.intents.slice().reverse().map((i) => `# undo ${describe(i)} (left by ${s.entry.op}, pid ${s.entry.pid}, killed)`))
      continue
    }
    // Take it: of two recoverers racing, the rename of one fails. The other may be undoing it
    // right now (a gc deleting the killed run's netns): an op on the guest must not read the
    // guest, let alone make things in it, before that is done.
    const held = heldName(s.file, process.pid)
    try {
      renameSync(s.file, held)
    } catch {
      again = true
      continue
    }
    // Undone as its writer left it: the listing may have read it while the writer was still alive
    // and about to announce (and take) more steps before it was killed.
    const entry = readEntryFile(held)
    if (entry === undefined || entry === 'gone') {
      renameSync(held, s.file)
      if (!opts.guest) report.kept.push(unreadableNote(s.file))
      continue
    }
    const kept = await undoEntry(entry, opts.hostNs, report)
    if (kept) {
      report.kept.push(`${entry.op} of pid ${entry.pid} (killed): ${kept}`)
      renameSync(held, unheldName(held))
    } else {
      rmSync(held, { force: true })
    }
  }
  return holder === undefined ? { again } : { holder, again }
}

/**
 * Of the netns nodes `names`, those an entry of a dead run still names as its own, with that
 * entry: one whose undo failed (kept for gc), or that nobody has taken yet. The run's netns
 * intent names its node by cookie once it was made; killed before that, the entry cannot tell
 * the node there from a later one and claims whatever is there. A run that went on using such a
 * node would lose it to the gc that finishes the entry. The journal is read once.
 */
export function deadClaimsOn(names: readonly string[]): Map<string, JournalEntry> {
  const claims = new Map<string, JournalEntry>()
  const wanted = new Set(names)
  for (const s of readJournal().entries) {
    if (stillRunning(s.entry.pid, s.entry.start)) continue
    const entry = finalEntry(s)
    if (!entry) continue
    for (const i of entry.intents) {
      if (i.t !== 'netns' || !wanted.has(i.name) || claims.has(i.name)) continue
      const now = netnsAt(`/run/netns/${i.name}`)
      if (now && (!i.id || sameNs(now, i.id))) claims.set(i.name, entry)
    }
  }
  return claims
}

/** Undo one entry; returns why it must be kept, or undefined when it is finished. */
async function undoEntry(entry: JournalEntry, hostNs: NetHandle, report: RecoverReport): Promise<string | undefined> {
  // A program it ran for a step (iptables inserting a rule, say, held up by another's firewall
  // lock) may still be at work: let it finish, or its change would land after the undo.
  const deadline = Date.now() + CHILD_WAIT_MS
  const tag = writerTag(entry)
  const ran = entry.intents.some((i) => i.t === 'programs')
  for (let left = ran ? processesChildOf(tag) : []; left.length; left = processesChildOf(tag)) {
    if (Date.now() > deadline) return left.length > 1 ? `its child processes ${left.join(' ')} are still running` : `its child process ${left[0]} is still running`
    await new Promise((r) => setTimeout(r, 20))
  }
  const handles = new Map<string, NetHandle | null>()
  try {
    const ctx: UndoContext = {
      hostNs,
      handles,
      hostEndPeers: hostEndPeersOf(entry),
      guests: entry.guests,
      // every guest the op worked on is gone (or its path names another netns now): nothing of it is left to serve
      guestsGone: entry.guests.length > 0 && entry.guests.every((g) => g.path !== undefined && handleFor({ ...g, ns: 'guest', path: g.path }, hostNs, handles) === null),
    }
    for (const intent of entry.intents.slice().reverse()) {
      try {
        const line = await undoIntent(intent, ctx)
        if (line) report.undone.push(`${line}  (left by ${entry.op}, pid ${entry.pid}, killed)`)
      } catch (err) {
        return `could not undo ${describe(intent)}: ${err instanceof Error ? err.message : String(err)}`
      }
    }
    return undefined
  } finally {
    for (const h of handles.values()) if (h && h !== hostNs) h.close()
  }
}

/**
 * The handle for `where`, or null when that netns is gone (or its path now names another one):
 * everything that lived only there went with it.
 */
function handleFor(where: Where, hostNs: NetHandle, handles: Map<string, NetHandle | null>): NetHandle | null {
  if (where.ns === 'host') return hostNs
  const key = `${where.dev}:${where.ino}:${where.cookie ?? ''}`
  if (handles.has(key)) return handles.get(key)!
  let h: NetHandle | null = null
  const fd = openSame(where)
  if (fd !== undefined) {
    try {
      h = openHandleIn(fd, where.path)
    } catch {
      h = null
    } finally {
      closeFd(fd)
    }
  }
  handles.set(key, h)
  return h
}

/** An fd of the netns at `where`'s path when it is still the netns the journal names (inode, and cookie when recorded); the caller closes it. */
function openSame(where: Extract<Where, { ns: 'guest' }>): number | undefined {
  let fd: number | undefined
  try {
    fd = openNetnsFd(where.path)
    if (sameNs(netnsIdOf(fd), where)) return fd
  } catch {
    // gone, or not a netns any more
  }
  if (fd !== undefined) closeFd(fd)
  return undefined
}

/** A link that is ours to delete: the kind we made, carrying no alias or plumb's own. */
const looksMade = (alias: string | undefined): boolean => !alias || parseMark(alias) !== undefined

interface UndoContext {
  hostNs: NetHandle
  handles: Map<string, NetHandle | null>
  /** where the peer of each of the entry's host ends was born, by the host end's name (see foreignHostEnd) */
  hostEndPeers: ReadonlyMap<string, Extract<Where, { ns: 'guest' }>>
  /** the netns the entry's op worked on */
  guests: readonly GuestNs[]
  /** all of them are gone: a later run on the guest made anew (the same name) may hold what carries the op's keys */
  guestsGone: boolean
}

/** The entry's host ends (link intents with a `peer` in a guest): where each one's peer was born, by name. */
function hostEndPeersOf(entry: JournalEntry): Map<string, Extract<Where, { ns: 'guest' }>> {
  const out = new Map<string, Extract<Where, { ns: 'guest' }>>()
  for (const i of entry.intents) if (i.t === 'link' && i.where.ns === 'host' && i.peer?.ns === 'guest') out.set(i.name, i.peer)
  return out
}

/**
 * Host end `l` (of one of the entry's names) is not the op's veth: the op's died with its peer's
 * netns, so one whose peer is in another netns, or whose peer's netns is gone, was made since (a
 * rerun after the guest was made anew: the same container id or lab node gives the same host end
 * name), and undoing the dead run must not delete it, nor its OVS row. Asked of the link as it is
 * when it would be undone: a rerun may make it while the undo is under way (waiting for the bridge
 * lock, say).
 */
async function foreignHostEnd(l: LinkInfo, peer: Extract<Where, { ns: 'guest' }>, hostNs: NetHandle): Promise<boolean> {
  let peerId: number | undefined
  const fd = openSame(peer)
  if (fd !== undefined) {
    try {
      peerId = await hostNs.nsIdOf(fd)
    } finally {
      closeFd(fd)
    }
  }
  return peerId === undefined || l.linkNetnsId !== peerId
}

async function undoIntent(intent: Intent, ctx: UndoContext): Promise<string | undefined> {
  const { hostNs, handles } = ctx
  switch (intent.t) {
    case 'link': {
      const ns = handleFor(intent.where, hostNs, handles)
      if (!ns) return undefined
      const l = await ns.getLink(intent.name)
      if (!l || l.kind !== intent.kind) return undefined
      if (intent.where.ns === 'host' && intent.peer?.ns === 'guest' && (await foreignHostEnd(l, intent.peer, hostNs))) return undefined
      if (!looksMade(l.alias)) throw new Error(`"${intent.name}" now carries another alias ("${l.alias}"): not touching it`)
      await ignoreGone(ns.delLink(l.index))
      return `${where(intent.where)}ip link del ${intent.name}`
    }
    case 'mtu': {
      // Put back only over the op's own value: an MTU someone set since is theirs.
      const l = await hostNs.getLink(intent.name)
      if (!l || l.mtu !== intent.mtu) return undefined
      await ignoreGone(hostNs.setLink(l.index, { mtu: intent.was }))
      return `ip link set ${intent.name} mtu ${intent.was}`
    }
    case 'isolated': {
      const l = await hostNs.getLink(intent.name)
      if (!l || !l.isolated) return undefined
      await ignoreGone(hostNs.setPortIsolated(l.index, false))
      return `ip link set ${intent.name} type bridge_slave isolated off`
    }
    case 'gw': {
      const ns = handleFor(intent.where, hostNs, handles)
      if (!ns) return undefined
      if (!(await restoreDefaultRoute(ns, intent.family, intent))) return undefined
      return `${where(intent.where)}ip route replace default${intent.gateway ? ` via ${intent.gateway}` : ''}${intent.dev ? ` dev ${intent.dev}` : ''}`
    }
    case 'moved': {
      const { resolveGuest } = await import('../guest/index.js')
      const ns = handleFor(intent.where, hostNs, handles)
      if (ns) {
        const l = await ns.getLink(intent.name)
        if (!l || (intent.mac && l.mac !== intent.mac) || !looksMade(l.alias)) return undefined
        const host = await resolveGuest({ kind: 'host' }, { allowHost: true })
        try {
          await ns.setLink(l.index, { up: false })
          await ns.setLink(l.index, { nsFd: host.fd, name: intent.orig, alias: intent.alias ?? '' })
        } finally {
          host.close()
        }
      } else {
        // The guest died with the device in it: the kernel handed a physical device back to the
        // host under its guest name. Found by MAC, renamed back.
        const l = (await hostNs.getLinks()).find((x) => x.mac === intent.mac && x.name === intent.name && looksMade(x.alias))
        if (!l) return undefined
        await hostNs.setLink(l.index, { up: false })
        await hostNs.setLink(l.index, { name: intent.orig, alias: intent.alias ?? '' })
      }
      if (intent.up) {
        const back = await hostNs.getLink(intent.orig)
        if (back) await hostNs.setLink(back.index, { up: true })
      }
      return `ip link set ${intent.name} netns 1 name ${intent.orig}`
    }
    case 'bridge': {
      const { acquireBridgeLock } = await import('./bridge-lock.js')
      const lock = await acquireBridgeLock('exclusive')
      try {
        const br = await hostNs.getLink(intent.name)
        if (!br || br.kind !== 'bridge' || !looksMade(br.alias)) return undefined
        const ports = (await hostNs.getLinks()).filter((l) => l.master === br.index)
        if (ports.length > 0) {
          // Another plumb put its port on it meanwhile: keep the bridge, but finish its mark so
          // gc knows it for plumb's once it is empty again.
          if (!br.alias) {
            const { bridgeMark } = await import('./bridge.js')
            await hostNs.setLink(br.index, { alias: bridgeMark(intent.name) })
            return `ip link set ${intent.name} alias '${bridgeMark(intent.name)}'`
          }
          return undefined
        }
        await ignoreGone(hostNs.delLink(br.index))
        return `ip link del ${intent.name}`
      } finally {
        lock.release()
      }
    }
    case 'fw': {
      // The rule goes unless the bridge still has a plumb port that needs it; under the bridge
      // lock, as gc's own removal: an attach holds it from finding the bridge until its port is
      // on it, so no port can be on its way while the bridge is seen without one.
      const { acquireBridgeLock } = await import('./bridge-lock.js')
      const lock = await acquireBridgeLock('exclusive')
      try {
        const br = await hostNs.getLink(intent.bridge)
        if (br) {
          const ports = (await hostNs.getLinks()).filter((l) => l.master === br.index)
          if (ports.some((p) => parseMark(p.alias)?.role === 'host')) return undefined
        }
        const { removeBridgeRules } = await import('./firewall.js')
        const removed = await removeBridgeRules(intent.bridge)
        return removed.length ? removed.join('; ') : undefined
      } finally {
        lock.release()
      }
    }
    case 'rules': {
      // The rules of a guest that is gone carry its name, which a guest made anew (a restarted
      // container) may carry too, with a later run's rules of the same keys: gc's pass over the
      // marks removes them only while no guest answers to that name.
      if (ctx.guestsGone) return undefined
      const { removeRulesNow } = await import('./firewall.js')
      const keys = new Set(intent.keys)
      const removed = await removeRulesNow(intent.binary, (m) => keys.has(ruleKey(m)))
      return removed.length ? removed.join('; ') : undefined
    }
    case 'sysctl': {
      if ((await hostNs.getSysctl(intent.path)) === undefined) return undefined // its device is gone
      await hostNs.setSysctl(intent.path, intent.was)
      const { sysctlLine } = await import('./firewall.js')
      return sysctlLine(intent.path, intent.was)
    }
    case 'ovs-port': {
      // the row of a later run's veth of that name
      const peer = ctx.hostEndPeers.get(intent.name)
      const end = peer ? await hostNs.getLink(intent.name) : undefined
      if (peer && end && (await foreignHostEnd(end, peer, hostNs))) return undefined
      const ovs = await import('../ovs/index.js')
      const port = await ovs.getPort(intent.name)
      if (!port || port.externalIds['plumb-owner'] !== 'plumb') return undefined
      await ovs.delPort(intent.name)
      return `ovs-vsctl --if-exists del-port ${intent.name}`
    }
    case 'ovs-bridge': {
      const ovs = await import('../ovs/index.js')
      return (await ovs.deleteBridgeIfEmptyAndOurs(intent.name)) ? `ovs-vsctl --if-exists del-br ${intent.name}` : undefined
    }
    case 'dhcp': {
      const dhcp = await import('../dhcp/index.js')
      // only the client started in the op's guest: a later run's in a new netns has the same state key
      const r = await dhcp.stopDhcp({ stateKey: intent.stateKey, ifname: intent.ifname, release: true, onlyInNetns: ctx.guests })
      return r.stopped ? `# stop the DHCP client of ${intent.ifname} (${intent.stateKey})` : undefined
    }
    case 'programs':
      return undefined // waited for before any undo (undoEntry)
    case 'netns': {
      // Still what the dead run made: that netns (by cookie, once the entry has it), its lo
      // unmarked and nothing else in it (killed before the mark: links come after), or its lo
      // carrying that run's mark. Any other is someone's.
      let fd: number
      try {
        fd = openNetnsFd(`/run/netns/${intent.name}`)
      } catch {
        return undefined // never made, or gone
      }
      try {
        // a later netns of the name: the dead run's went, and this one (a rerun's) has its mark too
        if (intent.id && !sameNs(netnsIdOf(fd), intent.id)) return undefined
        const h = openHandleIn(fd, `netns:${intent.name}`)
        try {
          const links = await h.getLinks()
          const lo = links.find((l) => l.name === 'lo')
          const bare = !lo?.alias && links.every((l) => l.name === 'lo')
          if (!bare && lo?.alias !== intent.mark) throw new Error(`netns ${intent.name} is not as the interrupted run left it (${lo?.alias ? `its lo carries "${lo.alias}"` : 'it holds other interfaces'}): not touching it`)
          // Its veths first, each with its peer at once: a netns's own teardown frees them later
          // (the kernel's clean-up runs after `ip netns del` returns), and a rerun making the
          // node and its links again right away would find their host ends' names still taken.
          for (const l of links) if (l.kind === 'veth') await ignoreGone(h.delLink(l.index))
        } finally {
          h.close()
        }
      } finally {
        closeFd(fd)
      }
      const { run } = await import('../proc.js')
      const r = await run('ip', ['netns', 'del', intent.name])
      if (r.exitCode !== 0) throw new Error(`ip netns del ${intent.name}: ${r.stderr.trim() || `exit ${r.exitCode}`}`)
      return `ip netns del ${intent.name}`
    }
  }
}

const where = (w: Where): string => (w.ns === 'host' ? '' : `nsenter --net=${w.path} `)

function describe(i: Intent): string {
  switch (i.t) {
    case 'link':
      return `${i.kind} ${i.name}${i.where.ns === 'guest' ? ` in ${i.where.path}` : ''}`
    case 'bridge':
      return `bridge ${i.name}`
    case 'fw':
      return `the firewall rule of ${i.bridge}`
    case 'rules':
      return `the firewall rules ${i.keys.join(', ')}`
    case 'sysctl':
      return `sysctl ${i.path} (was ${i.was})`
    case 'ovs-port':
      return `OVS port ${i.name}`
    case 'ovs-bridge':
      return `OVS bridge ${i.name}`
    case 'mtu':
      return `the MTU of ${i.name} (was ${i.was})`
    case 'isolated':
      return `the isolation of port ${i.name}`
    case 'gw':
      return `the replaced IPv${i.family} default route`
    case 'moved':
      return `the move of ${i.orig} into ${i.where.ns === 'guest' ? i.where.path : 'the host'}`
    case 'dhcp':
      return `the DHCP client of ${i.ifname}`
    case 'programs':
      return 'the programs it ran'
    case 'netns':
      return `netns ${i.name}`
  }
}

// The intent journal: what an op is about to create or replace, written to /run/plumb/journal
// before the kernel (or OVS, or iptables) sees it, and removed once the op has committed or
// rolled back. A mark can't ride in every creating message (the kernel ignores IFLA_IFALIAS on
// RTM_NEWLINK), so a plumb killed between creating a link and marking it would leave something
// nobody could tell from a user's own interface. Killed at any point, it leaves its entry
// instead: the next op on the same guest, or gc, sees that the entry's writer is dead and
// undoes what it lists (./recover.ts), so a rerun converges and gc removes the remains.
//
// Entries are tiny JSON files rewritten whole (writeFileAtomic: a reader never sees half a file)
// on the op's own thread, before the step they announce: ~40 µs per intent.

import { lstatSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs'
import { writeFileAtomic } from '../write-file.js'
import { basename, join } from 'node:path'
import { RUN_DIR } from '../paths.js'

export const JOURNAL_DIR = `${RUN_DIR}/journal`

/**
 * A netns by identity: two netns that exist at once are the same iff dev and ino are equal. Over
 * time an inode number is handed to the next netns made once its own is freed (measured: a lab
 * node deleted and made again at once often gets the number back), so a guest's netns also
 * carries its cookie (SO_NETNS_COOKIE), which the kernel never gives another: an entry whose netns
 * is gone does not take a newer one of the same inode for its own.
 */
export interface NsId {
  dev: number
  ino: number
  cookie?: number
}

/** One netns: the same inode (and device), and the same cookie where both sides know it (an inode is given again to a later netns, a cookie never). */
export const sameNs = (a: NsId, b: NsId): boolean => a.dev === b.dev && a.ino === b.ino && (a.cookie === undefined || b.cookie === undefined || a.cookie === b.cookie)

/** Where a link lives: plumb's own netns, or a guest's, reopened by path and checked by identity. */
export type Where = { ns: 'host' } | ({ ns: 'guest'; path: string } & NsId)

/** What an op is about to do that outlives it unless undone. */
export type Intent =
  /**
   * a link created in `where` (a veth end: deleting it deletes its peer). `peer`: where a host
   * end's peer is born; the op's veth dies with that netns, so a link of the name whose peer is
   * elsewhere (a rerun's, after the guest was made anew) is not the op's.
   */
  | { t: 'link'; where: Where; name: string; kind: string; peer?: Where }
  /** a Linux bridge created on the host */
  | { t: 'bridge'; name: string }
  /** plumb's FORWARD ACCEPT rule for a bridge */
  | { t: 'fw'; bridge: string }
  /** marked firewall rules about to be added (expose, masquerade, isolate): their keys (parse/rule-mark.ts ruleKey) */
  | { t: 'rules'; binary: 'iptables' | 'ip6tables'; keys: string[] }
  /** a host sysctl about to be set for those rules (`path` under /proc/sys/net): what to put back */
  | { t: 'sysctl'; path: string; was: string }
  /** an OVS bridge created by --create-bridge */
  | { t: 'ovs-bridge'; name: string }
  /** an OVS port row */
  | { t: 'ovs-port'; name: string }
  /** a host link's MTU about to be replaced (vxlan's bridge): what to put back while it is still `mtu` */
  | { t: 'mtu'; name: string; mtu: number; was: number }
  /** a host bridge port about to be isolated (isolate): turned back off while it still is */
  | { t: 'isolated'; name: string }
  /** a default route about to be replaced: what to put back */
  | { t: 'gw'; where: Where; family: 4 | 6; gateway?: string; dev?: string }
  /** a host device moved into a guest (move-dev): give it back as it was */
  | { t: 'moved'; where: Where; name: string; orig: string; mac?: string; alias?: string; up: boolean }
  /**
   * the op runs programs for its steps from here on (iptables, ovs-vsctl, ip): they carry
   * CHILD_OF=writerTag(entry) (lib/proc.ts), and may still be at work when the op dies
   */
  | { t: 'programs' }
  /** a DHCP client being started */
  | { t: 'dhcp'; stateKey: string; ifname: string }
  /**
   * an `ip netns` about to be made (a lab's netns node) whose lo is to carry `mark`: the netns has
   * nowhere to hold a mark before it exists. Amended with `id` once made: a later netns of the
   * name (a rerun's, after this one was removed) carries the same mark, and only its cookie tells
   * it apart.
   */
  | { t: 'netns'; name: string; mark: string; id?: NsId }

export interface JournalEntry {
  v: 1
  /** the writer: pid and its start time (a recycled pid has another) */
  pid: number
  start: number
  /** the netns the writer took for "host": entries of another host netns are not ours to undo */
  hostNs: NsId
  op: string
  /** the guest netns the op works on: an op on one of them recovers the entry first (`path`: where a guest's netns was found, the host's has none) */
  guests: GuestNs[]
  /** unix ms */
  at: number
  intents: Intent[]
}

export type GuestNs = NsId & { path?: string }

export interface JournalSpec {
  op: string
  guests: GuestNs[]
}

let seq = 0
let self: { pid: number; start: number; hostNs: NsId } | undefined

/** This process's pid, start time and netns, read once. */
export function selfIdentity(): { pid: number; start: number; hostNs: NsId } {
  if (!self) {
    const ns = statSync('/proc/self/ns/net')
    self = { pid: process.pid, start: processStart(process.pid) ?? 0, hostNs: { dev: ns.dev, ino: ns.ino } }
  }
  return self
}

/**
 * A process's start time in clock ticks since boot (/proc/PID/stat field 22), or undefined when
 * there is no such process, or only its zombie (killed, not yet reaped: it does nothing more).
 * The comm field may hold spaces and parentheses: parse after the last ')'.
 */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined
    const start = Number(fields[19])
    return Number.isFinite(start) ? start : undefined
  } catch {
    return undefined
  }
}

/** The process that wrote an entry is still the one running. */
export const stillRunning = (pid: number, start: number): boolean => processStart(pid) === start

/** What the programs an entry's writer ran for its steps carry (lib/proc.ts CHILD_OF). */
export const writerTag = (w: { pid: number; start: number }): string => `${w.pid}:${w.start}`

/** One op's entry. Nothing is written until the first intent; `close()` removes the file. */
export class Journal {
  private readonly file: string
  private entry: JournalEntry | undefined

  constructor(private readonly spec: JournalSpec) {
    this.file = join(JOURNAL_DIR, `${process.pid}-${++seq}.json`)
  }

  /** Record `intent`, durably, before the step it announces runs. */
  add(intent: Intent): void {
    if (!this.entry) {
      const id = selfIdentity()
      this.entry = { v: 1, pid: id.pid, start: id.start, hostNs: id.hostNs, op: this.spec.op, guests: this.spec.guests, at: Date.now(), intents: [] }
    }
    this.entry.intents.push(intent)
    this.write(this.entry)
  }

  /**
   * Complete an intent recorded before with what its step found out (the identity of the netns
   * it made), durably, in its place: the undo's order stays that of the steps.
   */
  amend<I extends Intent>(intent: I, patch: Partial<I>): void {
    if (!this.entry?.intents.includes(intent)) throw new Error('amend: not an intent of this entry')
    Object.assign(intent, patch)
    this.write(this.entry)
  }

  private write(entry: JournalEntry): void {
    try {
      writeFileAtomic(this.file, JSON.stringify(entry))
    } catch (err) {
      // the directory is made once, when a write first finds it missing (not on every op)
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      mkdirSync(JOURNAL_DIR, { recursive: true })
      writeFileAtomic(this.file, JSON.stringify(entry))
    }
  }

  /** The op committed or rolled back completely: nothing is left to undo. */
  close(): void {
    if (!this.entry) return
    try {
      unlinkSync(this.file) // one syscall (rmSync stats first)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    this.entry = undefined
  }
}

/** Whether any entry may be waiting (one readdir): ops check this before loading ./recover.ts. */
export function journalNotEmpty(): boolean {
  try {
    return readdirSync(JOURNAL_DIR).length > 0
  } catch {
    return false
  }
}

export interface StoredEntry {
  file: string
  entry: JournalEntry
}

/** A recoverer holds an entry under the name `<entry>.recovering.<its pid>`. */
const HELD_SUFFIX = /\.recovering\.(\d+)$/

/** An entry file's own name, without a recoverer's suffix. */
export const unheldName = (file: string): string => file.replace(HELD_SUFFIX, '')

/** The name under which process `pid` holds the entry `file`. */
export const heldName = (file: string, pid: number): string => `${unheldName(file)}.recovering.${pid}`

/** The pid of the recoverer whose name `file` carries, if it carries one. */
export function heldPid(file: string): number | undefined {
  const m = HELD_SUFFIX.exec(file)
  return m ? Number(m[1]) : undefined
}

/**
 * One entry file: 'gone' when it is no longer there (renamed by a recoverer, or removed by its
 * finished writer), undefined when it is not an entry plumb can read (a name still there that
 * cannot be opened, a dangling link, counts as that).
 */
export function readEntryFile(file: string): JournalEntry | 'gone' | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && !lstatSync(file, { throwIfNoEntry: false }) ? 'gone' : undefined
  }
  try {
    const entry = JSON.parse(text) as JournalEntry
    return entry.v === 1 && Array.isArray(entry.intents) ? entry : undefined
  } catch {
    return undefined
  }
}

/**
 * An entry as its writer left it, asked once the writer is known to be dead: the copy a listing
 * read while the writer was still alive may lack the steps it announced after (a gc that undid
 * that copy left them behind). Read again, under the name a recoverer gave it since if it has
 * one; undefined once it is finished or cannot be read.
 */
export function finalEntry(s: StoredEntry): JournalEntry | undefined {
  const again = readEntryFile(s.file)
  if (again !== 'gone') return again
  const base = unheldName(basename(s.file))
  let names: string[]
  try {
    names = readdirSync(JOURNAL_DIR)
  } catch {
    return undefined
  }
  for (const name of names) {
    if (unheldName(name) !== base) continue
    const e = readEntryFile(join(JOURNAL_DIR, name))
    if (e !== 'gone') return e
  }
  return undefined
}

/** How many times readJournal lists the journal again for entries that moved under it. */
const RELISTS = 5

/**
 * The entries on disk, newest last; unreadable ones are reported by name (never fatal). An entry
 * gone between the listing and its read was renamed by a recoverer taking it (or giving it back),
 * or removed by its finished writer: the journal is listed again, so that a taken entry is seen
 * under its new name (an op that missed it would go on while another plumb undoes the killed run
 * under it; a lab deploy would miss a dead run's claim on its node).
 */
export function readJournal(): { entries: StoredEntry[]; unreadable: string[] } {
  for (let pass = 1; ; pass++) {
    let names: string[]
    try {
      names = readdirSync(JOURNAL_DIR)
    } catch {
      return { entries: [], unreadable: [] } // no journal yet: nothing was ever interrupted
    }
    const entries: StoredEntry[] = []
    const unreadable: string[] = []
    let moved = false
    for (const name of names) {
      // `<pid>-<seq>.json`, and `<...>.json.recovering.<pid>` while a recoverer holds it
      if (!/\.json(\.recovering\.\d+)?$/.test(name)) continue
      const file = join(JOURNAL_DIR, name)
      const entry = readEntryFile(file)
      if (entry === 'gone') moved = true
      else if (entry === undefined) unreadable.push(file)
      else entries.push({ file, entry })
    }
    if (moved && pass < RELISTS) continue
    entries.sort((a, b) => a.entry.at - b.entry.at)
    return { entries, unreadable }
  }
}

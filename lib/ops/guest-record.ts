// The one thing plumb keeps about a guest that no kernel object can carry as a mark: the values
// it replaced (a sysctl's old value, the old hostname, files it created), so --del, detach --all
// and gc can put them back. One small JSON file per guest under /run/plumb/guests (tmpfs: a
// reboot takes the guests with it). It is written BEFORE the change it describes (a crash in
// between leaves a record of a change not made, which restoring handles; never the reverse).

import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { writeFileAtomic } from '../write-file.js'
import { join } from 'node:path'
import { RUN_DIR, encodeKey } from '../paths.js'
import type { Netns } from '../guest/index.js'
import { acquireFileLock } from './bridge-lock.js'
import type { Tx } from './tx.js'
import { netnsId } from './context.js'
import { sameNs } from './journal.js'
import type { NsId } from './journal.js'

export const RECORDS_DIR = join(RUN_DIR, 'guests')

export interface SysctlEntry {
  /** the value plumb found before its first change */
  found: string
  /** the value plumb set */
  set: string
}

export interface NamesEntry {
  /** --hostname: what plumb set, and what it replaced */
  hostname?: {
    set: string
    /** the guest's /etc/hostname before (null: plumb created the file) */
    file?: string | null
    /** the UTS hostname before */
    uts?: string
  }
  /** guest files plumb created (an ip netns's /etc/netns/NAME/x): --del removes them. Host paths. */
  created?: string[]
  /** /etc/netns/NAME made by plumb: removed when empty again */
  createdDir?: string
  /** the host-side path of each file plumb edited (what gc cleans when the guest is gone), by file name */
  files?: Record<string, string>
}

export interface GuestRecord {
  v: 1
  /** the guest's label, as ls shows it and gc resolves it */
  guest: string
  /** Netns.key: a container id or ino:N */
  key: string
  /** the netns identity the record belongs to: a new netns under the same name is another guest */
  netnsIno: number
  netnsDev: number
  /** and its cookie (SO_NETNS_COOKIE): the kernel gives a freed netns's inode to the next one at once, never its cookie */
  netnsCookie?: number
  sysctl?: Record<string, SysctlEntry>
  names?: NamesEntry
}

/**
 * Hold this guest's lock until the transaction ends: the ops that read a guest's record (and its
 * /etc files), change them and write them back (sysctl, names, set-ip's IPv6 switch, detach --all)
 * run one at a time per guest. Without it two `plumb sysctl` on one guest at once both read the
 * record and the second write drops the first one's entry: that value could never be put back.
 * flock(2) on /run/plumb/guests/KEY.lock (gc removes a gone guest's). Nothing in a dry run.
 */
export async function lockGuestRecord(tx: Tx, netns: Pick<Netns, 'key' | 'label'>, dir = RECORDS_DIR): Promise<void> {
  const file = lockPathOf(netns.key, dir)
  if (tx.dryRun || tx.holds(file)) return
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const lock = await acquireFileLock(`${netns.label}'s lock`, file, 'exclusive')
  tx.hold(file, () => lock.release())
}

export const lockPathOf = (key: string, dir = RECORDS_DIR): string => join(dir, `${encodeKey(key)}.lock`)

function pathOf(key: string, dir: string): string {
  return join(dir, `${encodeKey(key)}.json`)
}

/** A guest's key and netns identity: an opened guest, or what a record says of its own. */
export type RecordOwner = Netns | (NsId & { key: string })

/** The netns a record belongs to. */
export const recordNs = (r: GuestRecord): NsId => ({ dev: r.netnsDev, ino: r.netnsIno, ...(r.netnsCookie === undefined ? {} : { cookie: r.netnsCookie }) })

const nsOf = (netns: RecordOwner): NsId => ('fd' in netns ? netnsId(netns) : netns)

/**
 * The record of this guest's netns, or undefined. A record of an older netns of the same key is
 * not this guest's: an `ip netns` guest's key is its inode, which the kernel gives the next netns
 * made once the old one is freed; the cookie tells them apart.
 */
export function readRecord(netns: RecordOwner, dir = RECORDS_DIR): GuestRecord | undefined {
  const r = readRecordFile(pathOf(netns.key, dir))
  return r && sameNs(recordNs(r), nsOf(netns)) ? r : undefined
}

function readRecordFile(path: string): GuestRecord | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const r = JSON.parse(text) as GuestRecord
    return r && r.v === 1 && typeof r.key === 'string' ? r : undefined
  } catch {
    return undefined // a torn write cannot happen (rename), so this is not ours: ignore it
  }
}

/** A fresh record for this guest (not yet written). */
export function newRecord(netns: Netns): GuestRecord {
  const { cookie } = nsOf(netns)
  return { v: 1, guest: netns.label, key: netns.key, netnsIno: netns.ino, netnsDev: netns.dev, ...(cookie === undefined ? {} : { netnsCookie: cookie }) }
}

const empty = (r: GuestRecord): boolean => Object.keys(r.sysctl ?? {}).length === 0 && !hasNames(r.names)
const hasNames = (n: NamesEntry | undefined): boolean => !!n && (!!n.hostname || !!n.created?.length || !!n.createdDir || Object.keys(n.files ?? {}).length > 0)

/** Write (atomically: a temp file renamed over) or, when it holds nothing any more, remove the record. */
export function saveRecord(r: GuestRecord, dir = RECORDS_DIR): void {
  const path = pathOf(r.key, dir)
  if (empty(r)) {
    rmSync(path, { force: true })
    return
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  writeFileAtomic(path, `${JSON.stringify(r, null, 2)}\n`, { mode: 0o600 })
}

/** Put a record back as it was (undefined: there was none). */
export function restoreRecord(key: string, before: GuestRecord | undefined, dir = RECORDS_DIR): void {
  if (before) saveRecord(before, dir)
  else rmSync(pathOf(key, dir), { force: true })
}

export function removeRecord(key: string, dir = RECORDS_DIR): void {
  rmSync(pathOf(key, dir), { force: true })
}

/** Every record on this host (ls, gc). */
export function listRecords(dir = RECORDS_DIR): GuestRecord[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return names.filter((n) => n.endsWith('.json')).map((n) => readRecordFile(join(dir, n))).filter((r): r is GuestRecord => r !== undefined)
}

export const clone = (r: GuestRecord | undefined): GuestRecord | undefined => (r ? (JSON.parse(JSON.stringify(r)) as GuestRecord) : undefined)

// The durable record store: one JSON file per container under /var/lib/plumb/records (or
// configure({ recordsDir })), written atomically and durably, edited under one flock.
//
// Why a second store beside /run/plumb/guests (lib/ops/guest-record.ts): that one is runtime
// state for undo (the values a sysctl or a name edit replaced in THIS netns), tied to the netns
// inode and rightly lost with it or with a reboot. This one is intent that must outlive both:
// what to do again when the container comes back with a new netns, keyed by container id, on a
// disk that survives the reboot its restart policy brings it back from.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { writeFileAtomic } from '../write-file.js'
import { join } from 'node:path'
import { PlumbError } from '../errors.js'
import { recordsDir } from '../config.js'
import { acquireFileLock } from '../ops/bridge-lock.js'
import type { EngineName } from '../guest/types.js'
import { RecordError, containerRef, parseRecord, parseRecordFileName, recordFileName, removeP2pTo } from './record.js'
import type { ContainerRecord } from './record.js'

export const recordPath = (engine: EngineName, id: string): string => join(recordsDir(), recordFileName(engine, id))

/** A record as found on disk: the record, or why it could not be read. */
export type StoredRecord = { engine: EngineName; id: string; file: string } & ({ record: ContainerRecord } | { error: RecordError })

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new PlumbError('FAILED', `failed to read the record ${file}: ${(err as Error).message}`, { cause: err })
  }
}

/** The record of one container: undefined when there is none; a RecordError (thrown) when it cannot be read. */
export function loadRecord(engine: EngineName, id: string): ContainerRecord | undefined {
  const file = recordPath(engine, id)
  const text = readText(file)
  if (text === undefined) return undefined
  const r = parseRecord(text, file)
  if (r.engine !== engine || r.id !== id) throw new RecordError(file, `it names ${r.engine} container ${r.id}, not the one its file name does`)
  return r
}

/** Every record file (of one engine, if given), each read or with the reason it could not be. */
export function listStoredRecords(engine?: EngineName): StoredRecord[] {
  let names: string[]
  try {
    names = readdirSync(recordsDir())
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new PlumbError('FAILED', `failed to read the record store ${recordsDir()}: ${(err as Error).message}`, { cause: err })
  }
  const out: StoredRecord[] = []
  for (const name of names.sort()) {
    const who = parseRecordFileName(name)
    if (!who || (engine && who.engine !== engine)) continue
    const file = join(recordsDir(), name)
    try {
      const record = loadRecord(who.engine, who.id)
      if (record) out.push({ ...who, file, record })
    } catch (err) {
      if (!(err instanceof RecordError)) throw err
      out.push({ ...who, file, error: err })
    }
  }
  return out
}

/** Write a record (a record with no entry left is removed: nothing to replay). */
export function saveRecord(r: ContainerRecord): void {
  const file = recordPath(r.engine, r.id)
  if (r.entries.length === 0) {
    rmSync(file, { force: true })
    return
  }
  // it must outlive a reboot (replays after one): a power cut after return keeps it
  writeFileAtomic(file, `${JSON.stringify(r, null, 2)}\n`, { mode: 0o600, durable: true })
}

/**
 * Run `fn` holding the store's lock: a read-modify-write of a record (ten attaches to one
 * container at once all record) must not lose another's entry. flock(2) (the ops' file lock), so
 * a killed holder's lock goes with its fd; the critical sections are a read and a write, a few ms at most.
 */
export async function withStoreLock<T>(fn: () => T, timeoutMs = 10_000): Promise<T> {
  const dir = recordsDir()
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new PlumbError(err && (err as NodeJS.ErrnoException).code === 'EACCES' ? 'PERMISSION' : 'FAILED', `failed to create the record store ${dir}: ${(err as Error).message}`, {
      hint: 'run as root, or pass --no-persist to leave the container unrecorded (it is then not replayed after a restart)',
      cause: err,
    })
  }
  const lock = await acquireFileLock("the record store's lock", join(dir, '.lock'), 'exclusive', { timeoutMs })
  try {
    return fn()
  } finally {
    lock.release()
  }
}

/**
 * A container that no longer exists: its record goes, and so do the p2p links other records hold
 * to it (they would wait for it forever). An unreadable record of it goes too: nothing can come
 * back to it. Returns whether anything was removed.
 */
export async function forgetContainer(engine: EngineName, id: string): Promise<boolean> {
  return withStoreLock(() => {
    const file = recordPath(engine, id)
    let changed = existsSync(file)
    rmSync(file, { force: true })
    const ref = containerRef(engine, id)
    for (const s of listStoredRecords()) {
      if (!('record' in s) || !removeP2pTo(s.record, ref)) continue
      saveRecord(s.record)
      changed = true
    }
    return changed
  })
}

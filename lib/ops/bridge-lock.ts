// One host-wide lock between the ops that put ports on a Linux bridge (attach-veth: shared, any
// number at once) and gc, which deletes empty plumb bridges (exclusive). Without it a gc could
// delete a bridge between an attach's lookup (or creation) of it and the creation of its port.
// flock(2) on /run/plumb/bridges.lock, as CNI's host-local IPAM locks its store: the kernel drops
// a crashed holder's lock with its fd.

import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { PlumbError } from '../errors.js'
import { loadAddon } from '../kernel/native.js'
import { RUN_DIR } from '../paths.js'

export const BRIDGE_LOCK = `${RUN_DIR}/bridges.lock`
const LOCK_SH = 1
const LOCK_EX = 2
const RETRY_MS = 5

export interface BridgeLock {
  /** Let go (idempotent): as soon as the op's port exists, gc may look again. */
  release(): void
}

/**
 * Take the lock. A dry run, or a caller that cannot create the lock file (not root: it cannot
 * make or delete bridges either), gets a lock that holds nothing. Waits at most `timeoutMs`.
 */
export function acquireBridgeLock(mode: 'shared' | 'exclusive', opts: { dryRun?: boolean; timeoutMs?: number } = {}): Promise<BridgeLock> {
  return acquireFileLock('the bridge lock', BRIDGE_LOCK, mode, opts)
}

/** As acquireBridgeLock, but undefined when it stayed taken for `timeoutMs`: for work that may be left to gc. */
export function tryBridgeLock(mode: 'shared' | 'exclusive', opts: { dryRun?: boolean; timeoutMs?: number } = {}): Promise<BridgeLock | undefined> {
  return tryFileLock(BRIDGE_LOCK, mode, opts)
}

/** flock(2) on `file` (under /run/plumb), as acquireBridgeLock: an error naming `what` when it stays taken. Also the firewall's lock. */
export async function acquireFileLock(what: string, file: string, mode: 'shared' | 'exclusive', opts: { dryRun?: boolean; timeoutMs?: number } = {}): Promise<BridgeLock> {
  // A holder does seconds of work at most (a gc removing a bridge's firewall rules); on a loaded
  // machine, many in a row: waiting is what the caller wants, failing only when one is wedged.
  const timeoutMs = opts.timeoutMs ?? 30_000
  const gaveUp = { turns: false }
  const lock = await tryFileLock(file, mode, { ...opts, timeoutMs }, gaveUp)
  if (!lock) {
    const who = gaveUp.turns ? `other plumbs held it, one after another, for ${(TURNS_CEILING * timeoutMs) / 1000} s` : `another plumb held it for over ${timeoutMs / 1000} s`
    throw new PlumbError('FAILED', `failed to take ${what} ${file}: ${who}`, {
      hint: `see who holds it: fuser -v ${file}`,
    })
  }
  return lock
}

/** How many times `timeoutMs` a waiter waits in all while the lock keeps changing hands. */
const TURNS_CEILING = 4
/** How often a waiter looks at who holds the lock (/proc/locks). */
const LOOK_MS = 100

/**
 * How many times this process took each lock file it holds or waits on now: /proc/locks names a
 * process, and ops of one process (a library user's, a lab's) taking turns on a lock are one
 * holder there. An entry goes with its last holder or waiter: the watch daemon takes a lock of
 * each guest's record over days.
 */
const inUse = new Map<string, { takes: number; users: number }>()

function use(file: string): { takes: number; users: number } {
  let u = inUse.get(file)
  if (!u) inUse.set(file, (u = { takes: 0, users: 0 }))
  u.users++
  return u
}

function unuse(file: string, u: { users: number }): void {
  if (--u.users === 0) inUse.delete(file)
}

/**
 * Take the lock, waiting `timeoutMs` for its holder, started again whenever the lock changes
 * hands (another process holds it, or another op of this one took it since), up to TURNS_CEILING
 * times `timeoutMs` in all (`gaveUp.turns` says when that ran out). A waiter polls (flock with
 * LOCK_NB, so that ops in one process can wait on each other), and polling is no queue: under a
 * score of ops taking turns (a lab, the crash tests side by side) a waiter may lose turn after
 * turn while nobody is wedged; on a loaded machine, 30 s of that failed an op.
 */
async function tryFileLock(file: string, mode: 'shared' | 'exclusive', opts: { dryRun?: boolean; timeoutMs?: number } = {}, gaveUp = { turns: false }): Promise<BridgeLock | undefined> {
  const none: BridgeLock = { release: () => undefined }
  if (opts.dryRun) return none
  const addon = loadAddon()
  const timeoutMs = opts.timeoutMs ?? 10_000
  const since = Date.now()
  let deadline = since + timeoutMs
  let holders: string | undefined
  let lookedAt = 0
  const mine = use(file)
  let held = false
  try {
    for (;;) {
      let fd: number
      try {
        mkdirSync(dirname(file), { recursive: true })
        fd = openSync(file, 'a')
      } catch {
        return none
      }
      let open = true
      const close = (): void => {
        if (open) closeSync(fd) // closing the fd releases the lock
        open = false
      }
      try {
        while (!addon.flock(fd, mode === 'shared' ? LOCK_SH : LOCK_EX)) {
          const now = Date.now()
          if (now - lookedAt >= LOOK_MS) {
            lookedAt = now
            const h = `${holdersOf(fd) ?? '?'} ${mine.takes}`
            // it changed hands: the wait for this holder starts now
            if (holders !== undefined && h !== holders) deadline = Math.min(now + timeoutMs, since + TURNS_CEILING * timeoutMs)
            holders = h
          }
          if (now > deadline) {
            // at the ceiling: it had changed hands within the wait each time
            gaveUp.turns = deadline === since + TURNS_CEILING * timeoutMs
            close()
            return undefined
          }
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
        }
      } catch (err) {
        close()
        throw err
      }
      // A lock file gc may remove (a gone guest's): the file locked must still be the one at the
      // path, or another plumb opening it now would lock a new file and both would hold "the" lock.
      if (sameFile(fd, file)) {
        mine.takes++
        held = true
        return {
          release: () => {
            if (!open) return
            close()
            unuse(file, mine)
          },
        }
      }
      close()
    }
  } finally {
    if (!held) unuse(file, mine)
  }
}

/**
 * Who holds a flock on the file `fd` is open on: their pids from /proc/locks (one line a lock:
 * "N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF"; a blocked waiter's has "->" after "N:"),
 * sorted; undefined when it cannot be read. Matched by inode alone: a file of the same number on
 * another file system could only restart a wait, within its ceiling.
 */
function holdersOf(fd: number): string | undefined {
  let ino: string
  let text: string
  try {
    ino = String(fstatSync(fd).ino)
    text = readFileSync('/proc/locks', 'latin1')
  } catch {
    return undefined
  }
  const pids: string[] = []
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f[1] === 'FLOCK' && f[5]?.split(':')[2] === ino) pids.push(f[4]!)
  }
  return pids.sort().join(' ')
}

function sameFile(fd: number, file: string): boolean {
  try {
    const a = fstatSync(fd)
    const b = statSync(file)
    return a.ino === b.ino && a.dev === b.dev
  } catch {
    return false
  }
}

/**
 * Remove a lock file nobody holds (taken without waiting, removed, let go): a holder or a waiter
 * notices the file it locked is gone from the path and takes the new one. False when it is held.
 */
export function removeLockFile(file: string): boolean {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return true
  }
  try {
    if (!loadAddon().flock(fd, LOCK_EX)) return false
    if (sameFile(fd, file)) rmSync(file, { force: true })
    return true
  } finally {
    closeSync(fd)
  }
}

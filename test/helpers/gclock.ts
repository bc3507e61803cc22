// The one lock of the tests that run a host-wide `plumb gc` (or assert what only a gc would change),
// and any other lock tests take one at a time across ava's workers.

import { closeSync, fstatSync, openSync, statSync } from 'node:fs'
import { loadAddon } from '../../lib/kernel/native.js'
import { removeLockFile } from '../../lib/ops/bridge-lock.js'
import type { Teardown } from './env.js'

/** What the ava test of a gc lock holder needs: its teardown, and its timer when it has one (hooks have none). */
type Holder = Teardown & { timeout?: (ms: number, message?: string) => void }

/** How long a test may wait for the lock: the crash cases hold it for minutes. */
const WAIT_MS = 60 * 60_000

/**
 * Hold the host-wide gc lock of the tests for the rest of the test: gc collects the leftovers of
 * every guest on the machine, so two gc tests in two ava workers would collect each other's. A
 * worker that crashed, or was stopped, before its teardown holds nothing; a live holder
 * holds it however long it takes (a crash case holds it for minutes).
 *
 * `together`: tests of this worker that name the same group hold the lock as one: the first to
 * ask takes it, those that ask while it is asked for or held join, and the last of them to end
 * lets it go. For tests whose gc may meet each other's remains by design (the crash cases: each
 * checks only its own fixture's things, and a gc finishing a neighbour's killed run is
 * concurrency plumb must get right anyway) but not another test's deliberate leftovers.
 *
 * The test's time limit starts once the lock is held (`timeout`, default ava's 2 minutes from
 * package.json): waiting in the queue behind other holders is not the test's own time.
 */
export function holdGcLock(t: Holder, opts: { timeout?: number; together?: string } = {}): Promise<void> {
  if (opts.together === undefined) return holdTestLock(t, 'links-gc', opts)
  return holdTogether(t, opts.together, opts.timeout)
}

/** The groups of this worker holding (or asking for) the gc lock together: how many are in each, and the lock's release. */
const groups = new Map<string, { members: number; held: Promise<() => void> }>()

async function holdTogether(t: Holder, group: string, timeout?: number): Promise<void> {
  let g = groups.get(group)
  if (g === undefined) {
    // the group's own holding: released by the last member's teardown, not by the first's
    const releases: Array<() => void> = []
    const held = holdTestLock({ teardown: (fn) => void releases.push(() => void fn()) }, 'links-gc').then(() => () => releases.forEach((r) => r()))
    g = { members: 0, held }
    groups.set(group, g)
  }
  const joined = g
  joined.members++
  t.teardown(async () => {
    if (--joined.members > 0) return
    groups.delete(group)
    ;(await joined.held)()
  })
  t.timeout?.(WAIT_MS, 'waiting for the test lock /run/pt-links-gc.lock')
  await joined.held
  t.timeout?.(timeout ?? 120_000)
}

/**
 * Hold the test lock `name` (flock(2) on /run/pt-NAME.lock) for the rest of the test (the holder's
 * teardown lets it go), as holdGcLock. The kernel drops a holder's lock with its process, so a
 * worker that crashed holds nothing and there is no owner to judge. (The lock was a mkdir with an
 * owner file written after it: a waiter reading that file between its creation and its write
 * found no owner, took the holder for dead and removed its lock, and two tests ran gc at once.)
 * A waiter looks again every 100 ms: flock with LOCK_NB, so that tests of one worker wait on
 * each other too (each opens the file anew: a lock belongs to an open file, not a process).
 */
export async function holdTestLock(t: Holder, name: string, opts: { timeout?: number } = {}): Promise<void> {
  const file = `/run/pt-${name}.lock`
  t.timeout?.(WAIT_MS, `waiting for the test lock ${file}`)
  const addon = loadAddon()
  let fd: number
  for (;;) {
    fd = openSync(file, 'a')
    // the file locked must still be the one at the path: the last holder removes it as it lets go
    if (addon.flock(fd, LOCK_EX) && sameFile(fd, file)) break
    closeSync(fd)
    await new Promise((r) => setTimeout(r, 100))
  }
  t.teardown(() => {
    closeSync(fd)
    // removed unless another test took it meanwhile (a waiter then finds the file it locked gone, and opens the new one)
    removeLockFile(file)
  })
  t.timeout?.(opts.timeout ?? 120_000)
}

const LOCK_EX = 2

function sameFile(fd: number, file: string): boolean {
  try {
    const [a, b] = [fstatSync(fd), statSync(file)]
    return a.ino === b.ino && a.dev === b.dev
  } catch {
    return false
  }
}

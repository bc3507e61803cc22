// The one lock of the tests that run a host-wide `plumb gc` (or assert what only a gc would change),
// and any other lock tests take one at a time across ava's workers.

import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import type { Teardown } from './env.js'
import { startOf } from './process.js'


/** What the ava test of a gc lock holder needs: its teardown, and its timer when it has one (hooks have none). */
type Holder = Teardown & { timeout?: (ms: number, message?: string) => void }

/** How long a test may wait for the lock: the crash cases hold it for minutes. */
const WAIT_MS = 60 * 60_000

/**
 * Hold the host-wide gc lock of the tests for the rest of the test: gc collects the leftovers of
 * every guest on the machine, so two gc tests in two ava workers would collect each other's (a
 * mkdir is atomic). The lock names its holder (the ava worker's pid and start time): a lock
 * whose holder has exited (a worker that crashed, or was stopped, before its teardown) is taken
 * over; a live holder's never is, however long it holds (a crash case holds it for minutes).
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

/** Hold the test lock `name` (/run/pt-NAME.lock) for the rest of the test (the holder's teardown lets it go), as holdGcLock. */
async function holdTestLock(t: Holder, name: string, opts: { timeout?: number } = {}): Promise<void> {
  const dir = `/run/pt-${name}.lock`
  t.timeout?.(WAIT_MS, `waiting for the test lock ${dir}`)
  for (;;) {
    try {
      mkdirSync(dir)
      break
    } catch {
      if (ownerGone(dir)) rmSync(dir, { recursive: true, force: true })
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  writeFileSync(`${dir}/owner`, `${process.pid} ${startOf(process.pid)}\n`)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.timeout?.(opts.timeout ?? 120_000)
}

/** The lock's holder has exited (or never wrote its name: a holder dies between its mkdir and that write only if killed). */
function ownerGone(dir: string): boolean {
  let text: string
  try {
    text = readFileSync(`${dir}/owner`, 'utf8')
  } catch {
    try {
      // just made, its owner about to write its name: give it a moment
      return Date.now() - statSync(dir).mtimeMs > 10_000
    } catch {
      return false // released meanwhile
    }
  }
  const [pid, start] = text.trim().split(' ').map(Number)
  return pid === undefined || startOf(pid) === undefined || String(startOf(pid)) !== String(start)
}

// The one lock of the tests that run a host-wide `plumb gc` (or assert what only a gc would change).

import { mkdirSync, rmSync, statSync } from 'node:fs'
import type { Teardown } from './env.js'

/**
 * Hold the host-wide gc lock of the link tests for the rest of the test: gc collects the
 * leftovers of every guest on the machine, so two gc tests in two ava workers would collect each
 * other's (a mkdir is atomic; a lock older than the ava timeout is a crashed run's, taken over).
 */
export async function holdGcLock(t: Teardown): Promise<void> {
  const dir = '/run/pt-links-gc.lock'
  for (;;) {
    try {
      mkdirSync(dir)
      break
    } catch {
      try {
        if (Date.now() - statSync(dir).mtimeMs > 150_000) rmSync(dir, { recursive: true, force: true })
      } catch {
        /* released meanwhile */
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
}

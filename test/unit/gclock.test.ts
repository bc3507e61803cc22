// The tests' own lock (test/helpers/gclock.ts), which keeps two host-wide gc tests from running
// at once: one holder at a time across processes and within one, a killed holder holds nothing,
// and the last holder removes the file.

import { execa } from 'execa'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { holdTestLock, isRoot, testIf, uniq } from '../helpers/index.js'

const withRoot = testIf(isRoot, 'gclock: needs root (the lock lives in /run)')
const HELPER = fileURLToPath(new URL('../helpers/gclock.js', import.meta.url))

/** A holder outside ava: its teardowns, run on release(). */
function holder(): { teardown(fn: () => unknown): void; release(): Promise<void> } {
  const fns: Array<() => unknown> = []
  return {
    teardown: (fn) => void fns.push(fn),
    release: async () => {
      for (const fn of fns.reverse()) await fn()
    },
  }
}

/** A node process that takes the lock `name` `times` times, each time marking it held with a file only one holder may create. */
function taker(name: string, times: number, marker: string) {
  const script = `
    import { openSync, closeSync, rmSync } from 'node:fs'
    import { holdTestLock } from ${JSON.stringify(HELPER)}
    for (let i = 0; i < ${times}; i++) {
      const fns = []
      await holdTestLock({ teardown: (fn) => fns.push(fn) }, ${JSON.stringify(name)})
      // 'wx' fails when another holder's mark is there: two holders at once
      closeSync(openSync(${JSON.stringify(marker)}, 'wx'))
      await new Promise((r) => setTimeout(r, 5))
      rmSync(${JSON.stringify(marker)})
      for (const fn of fns.reverse()) await fn()
    }`
  return execa(process.execPath, ['--input-type=module', '-e', script], { reject: false })
}

withRoot('one holder at a time across processes, each taking it again and again; the last one removes the file', async (t) => {
  const name = uniq('-lk').slice('pt-'.length) // the lock is /run/pt-NAME.lock
  const marker = `/run/pt-${name}.held`
  t.teardown(async () => {
    const { rmSync } = await import('node:fs')
    rmSync(marker, { force: true })
    rmSync(`/run/pt-${name}.lock`, { force: true })
  })
  const runs = await Promise.all([taker(name, 6, marker), taker(name, 6, marker), taker(name, 6, marker)])
  for (const r of runs) t.is(r.exitCode, 0, r.stderr)
  t.false(existsSync(`/run/pt-${name}.lock`), 'let go by all: the file is gone')
})

withRoot('within one process a second holder waits for the first; a killed holder holds nothing', async (t) => {
  const name = uniq('-lk').slice('pt-'.length)
  const file = `/run/pt-${name}.lock`
  const first = holder()
  await holdTestLock(first, name)
  let second = false
  const h2 = holder()
  const waiting = holdTestLock(h2, name).then(() => (second = true))
  await new Promise((r) => setTimeout(r, 300))
  t.false(second, 'the second waits while the first holds it')
  await first.release()
  await waiting
  t.true(second)
  t.true(existsSync(file), 'held by the second')
  await h2.release()
  t.false(existsSync(file))

  // a holder killed before its teardown: the kernel drops its lock with its process
  const child = execa(process.execPath, ['--input-type=module', '-e', `
    import { holdTestLock } from ${JSON.stringify(HELPER)}
    await holdTestLock({ teardown: () => undefined }, ${JSON.stringify(name)})
    console.log('held')
    setInterval(() => undefined, 1000)`], { reject: false })
  await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => String(d).includes('held') && resolve()))
  let third = false
  const h3 = holder()
  const after = holdTestLock(h3, name).then(() => (third = true))
  await new Promise((r) => setTimeout(r, 300))
  t.false(third, 'the live child holds it')
  child.kill('SIGKILL')
  await child
  await after
  t.true(third, 'taken once the holder is dead')
  await h3.release()
  t.false(existsSync(file))
})

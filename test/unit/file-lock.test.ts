// The flock(2) file locks plumb's ops share (bridges, firewall, a guest's record): a lock file gc
// may remove (a gone guest's) must never let two holders in at once.

import test from 'ava'
import { execa } from 'execa'
import type { ExecutionContext } from 'ava'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { acquireFileLock, removeLockFile } from '../../lib/ops/bridge-lock.js'

const dir = mkdtempSync(join(tmpdir(), 'pt-lock-'))
test.after.always(() => rmSync(dir, { recursive: true, force: true }))
let seq = 0
const fresh = (): string => join(dir, `g${++seq}.lock`)

test('removeLockFile leaves a held lock file, and removes it once let go', async (t) => {
  const file = fresh()
  const held = await acquireFileLock('a test lock', file, 'exclusive')
  t.false(removeLockFile(file), 'held: not removed')
  t.true(existsSync(file))
  held.release()
  t.true(removeLockFile(file))
  t.false(existsSync(file))
  t.true(removeLockFile(file), 'no file: nothing to do')
})

test('a waiter whose lock file was removed from the path while it waited takes the new one: never two holders', async (t) => {
  const file = fresh()
  const first = await acquireFileLock('a test lock', file, 'exclusive')
  // a mark in the first holder's file (the lock opens without truncating): a new file has none.
  // (Not its inode number: tmpfs hands a freed one out again, so the new file may get the old one.)
  writeFileSync(file, 'the first holder\'s file')
  let second: { release(): void } | undefined
  const waiting = acquireFileLock('a test lock', file, 'exclusive', { timeoutMs: 5000 }).then((l) => (second = l))
  await new Promise((r) => setTimeout(r, 30))
  t.is(second, undefined, 'waits while the first holds it')
  // as gc does with a gone guest's lock: removed by its holder
  rmSync(file)
  first.release()
  await waiting
  t.true(existsSync(file), 'the waiter made the file anew')
  t.is(readFileSync(file, 'utf8'), '', 'a new file, not the one removed')
  t.false(removeLockFile(file), 'and holds the file at the path: a third comer waits for it')
  second!.release()
})

test('a lock that stays taken past the wait is an error naming the lock and who to ask', async (t) => {
  const file = fresh()
  const held = await acquireFileLock('a test lock', file, 'exclusive')
  const err = await t.throwsAsync(acquireFileLock('a test lock', file, 'exclusive', { timeoutMs: 50 }))
  t.regex(err!.message, /failed to take a test lock .*another plumb held it/)
  held.release()
})

/**
 * Other processes (util-linux flock) holding the lock shared, one after another and overlapping
 * (each 0.9 s, the next starting 0.4 s after the one before: never a moment free, even on a
 * loaded machine), ten in all: the lock changes hands every ~0.2-0.4 s for ~4.5 s.
 */
async function takingTurns(t: ExecutionContext, file: string): Promise<void> {
  writeFileSync(file, '')
  const turns = execa('sh', ['-c', `for i in 1 2 3 4 5 6 7 8 9 10; do flock -s "$1" sleep 0.9 & sleep 0.4; done; wait`, 'sh', file], { reject: false })
  t.teardown(() => void turns.kill('SIGKILL'))
  // the first of them holds it
  const held = async (): Promise<boolean> => (await execa('flock', ['-n', '-x', file, 'true'], { reject: false })).exitCode !== 0
  for (let i = 0; !(await held()); i++) {
    if (i > 200) throw new Error('the holders never took the lock')
    await new Promise((r) => setTimeout(r, 5))
  }
}

test('a waiter waits for each holder in turn: a lock that changes hands is not "held for over" the wait', async (t) => {
  const file = fresh()
  await takingTurns(t, file)
  const since = Date.now()
  // each holder within the wait, all of them beyond it (and within four times it)
  const lock = await acquireFileLock('a test lock', file, 'exclusive', { timeoutMs: 1_500 })
  t.true(Date.now() - since >= 3_000, `waited ${Date.now() - since} ms: through the turns of the holders`)
  lock.release()
})

test('a waiter that loses turn after turn gives up at four times its wait, saying so', async (t) => {
  const file = fresh()
  // each holder within the wait, all of them beyond four times it
  await takingTurns(t, file)
  const since = Date.now()
  const err = await t.throwsAsync(acquireFileLock('a test lock', file, 'exclusive', { timeoutMs: 1_000 }))
  t.regex(err!.message, /failed to take a test lock .*: other plumbs held it, one after another, for 4 s/)
  const waited = Date.now() - since
  t.true(waited >= 3_900, `gave up after ${waited} ms, not before four times its wait`)
})

test('ops of this process taking turns on a lock count as changing hands too', async (t) => {
  const file = fresh()
  // two shared holders in this process at any moment, the older let go as a new one takes it
  // every 300 ms for 3 s: /proc/locks shows the same two lines of the same pid throughout
  const holders = (async () => {
    const held = [await acquireFileLock('a test lock', file, 'shared'), await acquireFileLock('a test lock', file, 'shared')]
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 300))
      held.push(await acquireFileLock('a test lock', file, 'shared'))
      held.shift()!.release()
    }
    for (const l of held) l.release()
  })()
  // (their lock files are made again where missing: they end before the directory goes)
  t.teardown(() => holders)
  await new Promise((r) => setTimeout(r, 50))
  const since = Date.now()
  const lock = await acquireFileLock('a test lock', file, 'exclusive', { timeoutMs: 1_000 })
  t.true(Date.now() - since >= 2_000, `waited ${Date.now() - since} ms: through the turns of the holders`)
  lock.release()
})

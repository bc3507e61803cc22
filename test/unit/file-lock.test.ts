// The flock(2) file locks plumb's ops share (bridges, firewall, a guest's record): a lock file gc
// may remove (a gone guest's) must never let two holders in at once.

import test from 'ava'
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

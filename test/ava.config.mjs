// ava's configuration for `npm test`, which passes this file with --config: package.json's, plus
// the order ava starts the suite's files in, which takes a function (package.json cannot hold one,
// and ava reads package.json's only when no --config is given). The tests that run a host-wide gc
// take one lock one at a time (test/helpers/gclock.ts), and a file whose test waits for it holds
// one of ava's `concurrency` places meanwhile, doing nothing: the crash cases hold that lock for
// minutes. So they start first, the files that never take the lock fill the other places beside
// them, and the files that do come last, when the longest holder is done.
import { readFileSync } from 'node:fs'

const CRASH = /\/integration\/crash\.test\.js$/
const rank = new Map()
/** 0: the crash cases; 1: files that never wait for the gc lock; 2: files that do. */
function rankOf(file) {
  let r = rank.get(file)
  if (r === undefined) {
    r = CRASH.test(file) ? 0 : /\bholdGcLock\(/.test(readFileSync(file, 'utf8')) ? 2 : 1
    rank.set(file, r)
  }
  return r
}

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

export default {
  ...pkg.ava,
  sortTestFiles: (a, b) => rankOf(a) - rankOf(b) || a.localeCompare(b),
}

// writeFileAtomic's temporary files and removeDeadTemps, which takes away those a killed writer
// left (a dead pid's NAME.PID.tmp), never a live writer's, and with `of` only that file's.

import test from 'ava'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { removeDeadTemps, tempNameOf, writeFileAtomic } from '../../lib/write-file.js'

/** A pid no process has now (from the top of the range: not handed out again soon). */
function freePid(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'))
  for (let p = max - 1; p > 1; p--) if (!existsSync(`/proc/${p}`)) return p
  throw new Error('no free pid')
}

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'pt-wf-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('writeFileAtomic replaces the file and leaves no temporary file', (t) => {
  const dir = scratch(t)
  const file = join(dir, 'a:eth0')
  writeFileAtomic(file, 'one')
  writeFileAtomic(file, 'two', { durable: true })
  t.is(readFileSync(file, 'utf8'), 'two')
  t.deepEqual(readdirSync(dir), ['a:eth0'])
  t.is(tempNameOf(file), `${file}.${process.pid}.tmp`)
})

test("removeDeadTemps: a dead writer's temporary files go, a live writer's and other files stay; `of` narrows it to one file's", (t) => {
  const dir = scratch(t)
  const dead = freePid()
  const names = ['a:eth0', `a:eth0.${dead}.tmp`, `a:eth0.${process.pid}.tmp`, `b:eth0.${dead}.tmp`, 'notes.tmp', `a:eth00.${dead}.tmp`]
  for (const n of names) writeFileSync(join(dir, n), '')
  removeDeadTemps(dir, 'a:eth0')
  t.deepEqual(readdirSync(dir).sort(), names.filter((n) => n !== `a:eth0.${dead}.tmp`).sort(), "only a:eth0's dead temporary file")
  removeDeadTemps(dir)
  t.deepEqual(readdirSync(dir).sort(), ['a:eth0', `a:eth0.${process.pid}.tmp`, 'notes.tmp'].sort(), 'every dead one, nothing else')
  t.notThrows(() => removeDeadTemps(join(dir, 'missing')), 'no dir: nothing to do')
})

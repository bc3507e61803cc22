// The record store (lib/watch/store.ts) on a directory of its own (configure({ recordsDir })):
// round trips, an emptied record removed, unreadable files listed with their reason and never
// rewritten, forgetting a container (and the p2p links to it), and eight processes editing one
// record at once under the store's flock without losing an entry.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { configure } from '../../lib/config.js'
import { RecordError, containerRef, newContainerRecord } from '../../lib/watch/record.js'
import type { ContainerRecord } from '../../lib/watch/record.js'
import { forgetContainer, listStoredRecords, loadRecord, recordPath, saveRecord } from '../../lib/watch/store.js'

// one configuration per test file process; each test uses a directory of its own through it
test.serial.beforeEach((t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-records-'))
  configure({ recordsDir: dir })
  ;(t.context as { dir: string }).dir = dir
})
test.serial.afterEach.always((t) => rmSync(dirOf(t), { recursive: true, force: true }))
const dirOf = (t: ExecutionContext): string => (t.context as { dir: string }).dir

const A = 'a'.repeat(64)
const B = 'b'.repeat(64)
const withEntries = (id: string, ...entries: ContainerRecord['entries']): ContainerRecord => ({ ...newContainerRecord('docker', id, 'x'), entries })

test.serial('saveRecord writes a record loadRecord reads back whole (0600, no temporary file left); a record with no entry left is removed', (t) => {
  const r = withEntries(A, { op: 'attach-veth', args: { bridge: 'br0', ifname: 'eth1' }, at: '2025-01-01T00:00:00.000Z' })
  saveRecord(r)
  t.deepEqual(loadRecord('docker', A), r)
  t.is(statSync(recordPath('docker', A)).mode & 0o777, 0o600)
  t.deepEqual(readdirSync(dirOf(t)), [`docker-${A}.json`])
  saveRecord({ ...r, entries: [] })
  t.deepEqual(readdirSync(dirOf(t)), [])
  t.is(loadRecord('docker', A), undefined)
})

test.serial('listStoredRecords: readable records, and unreadable ones (corrupt, a newer plumb\'s, another container\'s content) each with its reason; other files ignored', (t) => {
  saveRecord(withEntries(A, { op: 'dhcp', args: { ifname: 'eth1' } }))
  writeFileSync(join(dirOf(t), `docker-${B}.json`), '{"v":1,"engine":"docker"')
  const newer = JSON.stringify({ v: 99, engine: 'podman', id: A, entries: [] })
  writeFileSync(join(dirOf(t), `podman-${A}.json`), newer)
  writeFileSync(join(dirOf(t), `podman-${B}.json`), JSON.stringify({ v: 1, engine: 'podman', id: A, entries: [] }))
  writeFileSync(join(dirOf(t), 'notes.txt'), 'x')
  const all = listStoredRecords()
  t.deepEqual(all.map((s) => [s.engine, s.id, 'record' in s ? 'ok' : s.error.message.replace(/^record .*? is unreadable: /, '').replace(/^not JSON .*/, 'not JSON')]), [
    ['docker', A, 'ok'],
    ['docker', B, 'not JSON'],
    ['podman', A, 'version 99 was written by a newer plumb (this one reads up to 1); it is left as it is'],
    ['podman', B, `it names podman container ${A}, not the one its file name does`],
  ])
  t.deepEqual(listStoredRecords('podman').map((s) => s.id), [A, B])
  t.throws(() => loadRecord('podman', A), { instanceOf: RecordError })
  t.is(readFileSync(join(dirOf(t), `podman-${A}.json`), 'utf8'), newer, 'a newer plumb\'s record is left as it is')
})

test.serial('forgetContainer: its record goes, and so do the p2p links other records hold to it; false when there was nothing', async (t) => {
  const link = { op: 'p2p-link' as const, args: { a: containerRef('docker', A), b: containerRef('docker', B), ifnameA: 'eth1', ifnameB: 'eth1' } }
  saveRecord(withEntries(A, link, { op: 'attach-veth', args: { ifname: 'eth2' } }))
  saveRecord(withEntries(B, link))
  t.true(await forgetContainer('docker', B))
  t.deepEqual(readdirSync(dirOf(t)).filter((n) => n.endsWith('.json')), [`docker-${A}.json`])
  t.deepEqual(loadRecord('docker', A)!.entries.map((e) => e.op), ['attach-veth'])
  t.false(await forgetContainer('docker', B))
})

// A child that appends `n` entries to A's record, each a read-modify-write under the lock.
const CHILD = `
const [store, config, dir, who, n] = process.argv.slice(1)
const { configure } = await import(config)
const s = await import(store)
configure({ recordsDir: dir })
for (let i = 0; i < Number(n); i++) {
  await s.withStoreLock(() => {
    const r = s.loadRecord('docker', '${A}') ?? { v: 1, engine: 'docker', id: '${A}', entries: [] }
    r.entries.push({ op: 'set-ip', args: { ifname: who + '-' + i } })
    s.saveRecord(r)
  })
}
`

test.serial('eight processes editing one record at once lose no entry (flock around each read-modify-write)', async (t) => {
  const url = (p: string): string => new URL(p, import.meta.url).href
  const run = promisify(execFile)
  await Promise.all(
    Array.from({ length: 8 }, (_, i) => run(process.execPath, ['--input-type=module', '-e', CHILD, url('../../lib/watch/store.js'), url('../../lib/config.js'), dirOf(t), `p${i}`, '10'])),
  )
  const r = loadRecord('docker', A)!
  t.is(r.entries.length, 80)
  t.is(new Set(r.entries.map((e) => e.args.ifname)).size, 80)
})

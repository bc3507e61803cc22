// lib/ovs/ovsdb.ts without OVS: the JSON stream splitter, and the client against a fake
// ovsdb-server on a unix socket (echo answered, replies cut into pieces, errors, reuse, timeouts).

import test from 'ava'
import { configure } from '../../lib/config.js'
import { PlumbError } from '../../lib/errors.js'
import { JsonSplitter, OvsdbError, ovsdbConnectionsOpened, transact, transactAndWait } from '../../lib/ovs/ovsdb.js'
import { fakeOvsdbServer as fakeServer } from '../helpers/fake-ovsdb.js'
import { waitFor } from '../helpers/env.js'

const C = { verb: 'read', object: 'OVS port', name: 'vp0' }

// --- the splitter ---

test('splitter: two messages in one chunk, whitespace between them', (t) => {
  const s = new JsonSplitter()
  t.deepEqual(s.push('{"a":1} \n{"b":[2,{"c":3}]}'), ['{"a":1}', '{"b":[2,{"c":3}]}'])
  t.is(s.pending, 0)
})

test('splitter: a message cut anywhere, even mid-string, comes out whole once complete', (t) => {
  const msg = '{"id":1,"result":[{"rows":[{"name":"a}b{c"}]}],"error":null}'
  for (let cut = 1; cut < msg.length; cut++) {
    const s = new JsonSplitter()
    t.deepEqual(s.push(msg.slice(0, cut)), [], `cut at ${cut}`)
    t.deepEqual(s.push(msg.slice(cut)), [msg], `cut at ${cut}`)
  }
})

test('splitter: braces and brackets inside strings do not count; escaped quotes and backslashes do not end a string', (t) => {
  const s = new JsonSplitter()
  const a = '{"s":"}}]]{{"}'
  const b = '{"s":"a \\"quoted}\\" word","t":"ends with a backslash \\\\"}'
  t.deepEqual(s.push(a + b), [a, b])
  t.deepEqual(JSON.parse(b), { s: 'a "quoted}" word', t: 'ends with a backslash \\' })
  // The escape itself split from what it escapes.
  const s2 = new JsonSplitter()
  t.deepEqual(s2.push('{"s":"x\\'), [])
  t.deepEqual(s2.push('"}"}'), ['{"s":"x\\"}"}'])
})

test('splitter: a UTF-8 character split across chunks is decoded whole', (t) => {
  const msg = '{"details":"né — 日本 ✓"}'
  const bytes = Buffer.from(msg)
  for (let cut = 1; cut < bytes.length; cut++) {
    const s = new JsonSplitter()
    const out = [...s.push(bytes.subarray(0, cut)), ...s.push(bytes.subarray(cut))]
    t.deepEqual(out, [msg], `cut at byte ${cut}`)
  }
  // Byte by byte.
  const s = new JsonSplitter()
  const out: string[] = []
  for (const byte of bytes) out.push(...s.push(Buffer.from([byte])))
  t.deepEqual(out, [msg])
})

test('splitter: something that is not a JSON object between messages is an error', (t) => {
  t.throws(() => new JsonSplitter().push('{"a":1}x'), { message: /not a JSON object/ })
})

// --- the client, against a fake server ---

test.serial('transact: the reply arrives in pieces after an echo request, which the client answers', async (t) => {
  const srv = await fakeServer(t, (msg, send) => {
    if (msg.method === 'transact') {
      send({ method: 'echo', params: ['ping', 7], id: 'echo' })
      send({ id: msg.id, result: [{ rows: [{ name: 'vp0 — ✓ {"}' }] }], error: null }, 5)
    }
  })
  const res = await transact([{ op: 'select', table: 'Port', where: [], columns: ['name'] }], C)
  t.deepEqual(res, [{ rows: [{ name: 'vp0 — ✓ {"}' }] }])
  t.like(srv.seen[0], { method: 'transact', params: ['Open_vSwitch', { op: 'select', table: 'Port', where: [], columns: ['name'] }] })
  // The echo reply goes back with the same id and params.
  t.deepEqual(await waitFor(() => srv.seen[1], { what: 'the echo reply' }), { result: ['ping', 7], error: null, id: 'echo' })
})

test.serial('one connection is reused across calls, and reopened (the call retried once) when the server dropped it', async (t) => {
  let dropped = 0
  const srv = await fakeServer(t, (msg, send, sock) => {
    // The first "drop" request is never answered: the server goes away under it (a restart).
    if ((msg.params[1] as { table?: string } | undefined)?.table === 'drop' && dropped++ === 0) return void sock.destroy()
    if (msg.method === 'transact') send({ id: msg.id, result: [{}], error: null })
  })
  const opened = ovsdbConnectionsOpened()
  await transact([{ op: 'comment', comment: 'a' }], C)
  await transact([{ op: 'comment', comment: 'b' }], C)
  await Promise.all([transact([{ op: 'comment', comment: 'c' }], C), transact([{ op: 'comment', comment: 'd' }], C)])
  t.is(srv.connections(), 1)
  t.is(ovsdbConnectionsOpened() - opened, 1)
  t.deepEqual(await transact([{ op: 'select', table: 'drop', where: [] }], C), [{}])
  t.is(srv.connections(), 2)
  t.is(dropped, 2, 'sent twice: once on the dropped connection, once on the new one')
  await transact([{ op: 'comment', comment: 'e' }], C)
  t.is(srv.connections(), 2)
})

test.serial('a failed operation is an OvsdbError naming the operation; a JSON-RPC error too', async (t) => {
  await fakeServer(t, (msg, send) => {
    const first = msg.params[1] as { op: string }
    if (first.op === 'wait') send({ id: msg.id, result: [{ error: 'timed out', details: 'wait timed out' }], error: null })
    else if (first.op === 'insert') send({ id: msg.id, result: [{ uuid: ['uuid', 'u'] }, { error: 'referential integrity violation', details: 'row is referenced' }], error: null })
    else send({ id: msg.id, result: null, error: { error: 'unknown database', details: 'no db' } })
  })
  const w = await t.throwsAsync(transact([{ op: 'wait' }, { op: 'insert' }], C), { instanceOf: OvsdbError })
  t.is(w?.opIndex, 0)
  t.is(w?.message, 'timed out: wait timed out')
  // A commit failure comes after the last operation's result: no operation to blame.
  const c = await t.throwsAsync(transact([{ op: 'insert' }], C), { instanceOf: OvsdbError })
  t.is(c?.opIndex, undefined)
  t.regex(c?.message ?? '', /^referential integrity violation/)
  const r = await t.throwsAsync(transact([{ op: 'select' }], C), { instanceOf: OvsdbError })
  t.is(r?.error, 'unknown database')
})

test.serial('transactAndWait bumps next_cfg in the same transaction and waits for cur_cfg from the monitor', async (t) => {
  let cfg = 41
  const srv = await fakeServer(t, (msg, send) => {
    if (msg.method === 'monitor') send({ id: msg.id, result: { Open_vSwitch: { r1: { new: { cur_cfg: cfg } } } }, error: null })
    if (msg.method === 'transact') {
      send({ id: msg.id, result: [{ uuid: ['uuid', 'x'] }, { count: 1 }, { rows: [{ next_cfg: cfg + 1 }] }], error: null })
      // ovs-vswitchd applies it a little later; an unrelated update first.
      setTimeout(() => send({ method: 'update', params: ['plumb-cfg', { Open_vSwitch: { r1: { new: { cur_cfg: cfg } } } }], id: null }), 10)
      setTimeout(() => send({ method: 'update', params: ['plumb-cfg', { Open_vSwitch: { r1: { new: { cur_cfg: ++cfg } } } }], id: null }), 40)
    }
  })
  const start = Date.now()
  const res = await transactAndWait([{ op: 'insert', table: 'Port', row: {} }], C)
  t.true(Date.now() - start >= 35, 'it waited for the update')
  t.deepEqual(res, [{ uuid: ['uuid', 'x'] }], 'the two next_cfg operations are dropped from the results')
  const tx = srv.seen.find((m) => (m as { method?: string }).method === 'transact') as { params: unknown[] }
  t.deepEqual(tx.params.slice(2), [
    { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
    { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
  ])
  // A second one reuses the monitor: one monitor request in all.
  await transactAndWait([{ op: 'insert', table: 'Port', row: {} }], C)
  t.is(srv.seen.filter((m) => (m as { method?: string }).method === 'monitor').length, 1)
})

test.serial('the monitor reply, the transaction reply and the cur_cfg update in one chunk: the update is not undone by the older initial value', async (t) => {
  // What ovsdb-server did under load: all three back to back in one read. The initial value is
  // applied in a promise callback, after the update was applied synchronously; it must not win.
  let monitorId: unknown
  await fakeServer(t, (msg, _send, sock) => {
    if (msg.method === 'monitor') monitorId = msg.id
    if (msg.method === 'transact') {
      sock.write(
        JSON.stringify({ id: monitorId, result: { Open_vSwitch: { r1: { new: { cur_cfg: 4314 } } } }, error: null }) +
          JSON.stringify({ id: msg.id, result: [{ count: 1 }, { rows: [{ next_cfg: 4315 }] }], error: null }) +
          JSON.stringify({ id: null, method: 'update', params: ['plumb-cfg', { Open_vSwitch: { r1: { old: { cur_cfg: 4314 }, new: { cur_cfg: 4315 } } } }] }),
      )
    }
  })
  const waited = await Promise.race([
    transactAndWait([], C).then(() => 'applied'),
    new Promise((resolve) => setTimeout(() => resolve('still waiting after 2 s'), 2000)),
  ])
  t.is(waited, 'applied')
})

test.serial('nothing listening: UNSUPPORTED "Open vSwitch is not running" with the start hint, like ovs-vsctl', async (t) => {
  const before = configure({ ovsdbSocket: '/nonexistent/pt-ovsdb.sock' })
  t.teardown(() => void configure(before))
  const e = await t.throwsAsync(transact([], C), { instanceOf: PlumbError })
  t.is(e?.code, 'UNSUPPORTED')
  t.is(e?.message, 'failed to read OVS port "vp0": Open vSwitch is not running (unix:/nonexistent/pt-ovsdb.sock: database connection failed (No such file or directory))')
  t.is(e?.hint, 'start it: /usr/share/openvswitch/scripts/ovs-ctl start')
})

test.serial('a server that never answers: UNSUPPORTED after 5 s, with the start hint', async (t) => {
  t.timeout(15_000)
  await fakeServer(t, () => undefined)
  const start = Date.now()
  const e = await t.throwsAsync(transact([], C), { instanceOf: PlumbError })
  t.is(e?.code, 'UNSUPPORTED')
  t.regex(e?.message ?? '', /did not answer within 5 s/)
  t.regex(e?.hint ?? '', /ovs-ctl start/)
  t.true(Date.now() - start >= 4900)
})

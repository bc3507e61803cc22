// Fakes for the unit tests of lib/ovs: ovsdb-servers on a unix socket (one that hands each request to
// the test, and a small in-memory Open_vSwitch database), and an ovs-vsctl on PATH that records its argv.

import type { ExecutionContext } from 'ava'
import { mkdtempSync, rmSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configure } from '../../lib/config.js'
import { JsonSplitter, closeOvsdb } from '../../lib/ovs/ovsdb.js'

export interface RpcMessage {
  method: string
  params: unknown[]
  id: unknown
}

/** Write `m`, cut into `pieces` writes a few ms apart, so the client sees partial messages. */
export type Send = (m: unknown, pieces?: number) => void
export type Handler = (msg: RpcMessage, send: Send, sock: Socket) => void

/**
 * A unix-socket server speaking JSON-RPC the way ovsdb-server frames it (messages back to back);
 * plumb is configured to use it for the test (and back after). Tests using it run serially: the
 * setting and the client's one connection are process-wide.
 */
export async function fakeOvsdbServer(t: ExecutionContext, handler: Handler): Promise<{ path: string; connections: () => number; seen: unknown[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-ovsdb-'))
  const path = join(dir, 'db.sock')
  let connections = 0
  const seen: unknown[] = []
  const server = createServer((sock) => {
    connections++
    const split = new JsonSplitter()
    const send: Send = (m, pieces = 1) => {
      const buf = Buffer.from(JSON.stringify(m))
      const size = Math.ceil(buf.length / pieces)
      for (let i = 0; i < pieces; i++) setTimeout(() => sock.writable && sock.write(buf.subarray(i * size, (i + 1) * size)), i * 2)
    }
    sock.on('data', (chunk) => {
      for (const text of split.push(chunk)) {
        const msg = JSON.parse(text) as RpcMessage
        seen.push(msg)
        handler(msg, send, sock)
      }
    })
    sock.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  const before = configure({ ovsdbSocket: path })
  t.teardown(async () => {
    closeOvsdb()
    configure(before)
    await new Promise((r) => server.close(r))
    rmSync(dir, { recursive: true, force: true })
  })
  return { path, connections: () => connections, seen }
}

// --- an in-memory Open_vSwitch database ---

type Row = Record<string, unknown>
type Tables = Record<string, Map<string, Row>>

/** Column defaults of the tables plumb reads (a missing column reads as its empty value). */
const DEFAULTS: Record<string, Row> = {
  Open_vSwitch: { bridges: ['set', []], next_cfg: 0, cur_cfg: 0, ovs_version: ['set', []] },
  Bridge: { name: '', ports: ['set', []], datapath_type: '', datapath_version: '', external_ids: ['map', []] },
  Port: { name: '', interfaces: ['set', []], tag: ['set', []], trunks: ['set', []], external_ids: ['map', []] },
  Interface: { name: '', ofport: ['set', []], error: ['set', []], link_state: ['set', []] },
}

const tagged = (v: unknown, tag: string): v is [string, unknown] => Array.isArray(v) && v.length === 2 && v[0] === tag
/** A set's members (a bare atom is a set of one). */
const members = (v: unknown): unknown[] => (tagged(v, 'set') ? (v[1] as unknown[]) : [v])
const pairs = (v: unknown): Array<[unknown, unknown]> => (tagged(v, 'map') ? (v[1] as Array<[unknown, unknown]>) : [])
const key = (v: unknown): string => JSON.stringify(v)

/** OVSDB equality: sets and maps compare as unordered collections; a set of one equals its atom. */
function equal(a: unknown, b: unknown): boolean {
  if (tagged(a, 'map') || tagged(b, 'map')) {
    const ka = pairs(a).map(key).sort()
    const kb = pairs(b).map(key).sort()
    return key(ka) === key(kb)
  }
  const sa = members(a).map(key).sort()
  const sb = members(b).map(key).sort()
  return key(sa) === key(sb)
}

function includes(col: unknown, v: unknown): boolean {
  if (tagged(v, 'map')) {
    const have = new Set(pairs(col).map(key))
    return pairs(v).every((p) => have.has(key(p)))
  }
  const have = new Set(members(col).map(key))
  return members(v).every((m) => have.has(key(m)))
}

class OpError extends Error {
  constructor(
    readonly error: string,
    readonly details: string,
  ) {
    super(`${error}: ${details}`)
  }
}

export interface FakeIface {
  /** what ovs-vswitchd sets when it applies a configuration with this interface */
  ofport?: number
  error?: string
  linkState?: string
}

export interface FakePort extends FakeIface {
  name: string
  /** the Interface's name, when it is not the port's */
  iface?: string
  tag?: number
  trunks?: number[]
  externalIds?: Record<string, string>
}

export interface FakeOvsdbOptions {
  /** ovs-vswitchd's verdict on an interface it opens (default: an OpenFlow port number, no error) */
  vswitchd?: (iface: string) => FakeIface
  /** Open_vSwitch.ovs_version ('' : the switch daemon never ran) */
  version?: string
}

export interface FakeOvsdb {
  path: string
  /** every request the client sent, in order */
  seen: unknown[]
  /** the `transact` requests' operations, in order */
  transactions: () => Array<Array<Record<string, unknown>>>
  /** a table's rows as OVSDB holds them, each with its `_uuid` text */
  rows: (table: string) => Row[]
  /** the one row of `table` named `name` (undefined when there is none) */
  row: (table: string, name: string) => Row | undefined
  addBridge: (name: string, opts?: { datapathType?: string; externalIds?: Record<string, string>; ports?: FakePort[] }) => void
}

let uuidSeq = 0
const newUuid = (): string => `00000000-0000-4000-8000-${String(++uuidSeq).padStart(12, '0')}`
const setOf = (xs: unknown[]): unknown => ['set', xs]
const mapOf = (o: Record<string, string>): unknown => ['map', Object.entries(o)]

/**
 * A fake ovsdb-server holding an Open_vSwitch database in memory: `transact` with select, insert,
 * update, mutate, delete, wait and comment (atomic: a failed operation leaves nothing changed,
 * unreferenced Port and Interface rows are collected as ovsdb-server does), `monitor` of cur_cfg,
 * and an "ovs-vswitchd" that applies each next_cfg a few ms later (ofport/error per interface).
 */
export async function fakeOvsdb(t: ExecutionContext, opts: FakeOvsdbOptions = {}): Promise<FakeOvsdb> {
  let ofport = 0
  const vswitchd = opts.vswitchd ?? ((): FakeIface => ({ ofport: ++ofport, linkState: 'up' }))
  let tables: Tables = { Open_vSwitch: new Map(), Bridge: new Map(), Port: new Map(), Interface: new Map() }
  const root = newUuid()
  tables.Open_vSwitch!.set(root, { next_cfg: 1, cur_cfg: 1, ovs_version: opts.version ?? '3.1.0' })
  const monitors: Array<{ id: unknown; sock: Socket; send: Send }> = []

  const get = (table: string, row: Row, col: string): unknown => (col === '_uuid' ? undefined : (row[col] ?? DEFAULTS[table]?.[col]))
  const matches = (table: string, uuid: string, row: Row, where: unknown[]): boolean =>
    where.every((c) => {
      const [col, fn, v] = c as [string, string, unknown]
      const have = col === '_uuid' ? ['uuid', uuid] : get(table, row, col)
      if (fn === '==') return equal(have, v)
      if (fn === '!=') return !equal(have, v)
      if (fn === 'includes') return includes(have, v)
      if (fn === 'excludes') return !includes(have, v)
      throw new OpError('not supported', `the fake does not do "${fn}"`)
    })
  const select = (tbls: Tables, table: string, where: unknown[]): Array<[string, Row]> => {
    const t = tbls[table]
    if (!t) throw new OpError('unknown table', table)
    return [...t.entries()].filter(([u, r]) => matches(table, u, r, where))
  }
  const project = (table: string, uuid: string, row: Row, columns: string[] | undefined): Row =>
    Object.fromEntries((columns ?? ['_uuid', ...Object.keys(DEFAULTS[table] ?? {})]).map((c) => [c, c === '_uuid' ? ['uuid', uuid] : get(table, row, c)]))

  /** Named uuids into real ones, anywhere in a value. */
  const resolve = (v: unknown, named: Map<string, string>): unknown => {
    if (tagged(v, 'named-uuid')) {
      const u = named.get(v[1] as string)
      if (!u) throw new OpError('referential integrity violation', `no row named ${String(v[1])}`)
      return ['uuid', u]
    }
    if (Array.isArray(v)) return v.map((x) => resolve(x, named))
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x, named)]))
    return v
  }

  function mutate(table: string, row: Row, [col, mutator, value]: [string, string, unknown]): void {
    const cur = get(table, row, col)
    if (mutator === '+=') row[col] = (cur as number) + (value as number)
    else if (tagged(cur, 'map') || (tagged(value, 'map') && mutator === 'insert')) {
      let ps = pairs(cur)
      if (mutator === 'insert') ps = [...ps, ...pairs(value).filter(([k]) => !ps.some(([k2]) => key(k2) === key(k)))]
      else if (tagged(value, 'map')) ps = ps.filter((p) => !pairs(value).some((q) => key(q) === key(p)))
      else ps = ps.filter(([k]) => !members(value).some((d) => key(d) === key(k))) // delete by keys
      row[col] = ['map', ps]
    } else {
      let ms = members(cur)
      if (mutator === 'insert') ms = [...ms, ...members(value).filter((m) => !ms.some((x) => key(x) === key(m)))]
      else if (mutator === 'delete') ms = ms.filter((m) => !members(value).some((d) => key(d) === key(m)))
      else throw new OpError('not supported', `the fake does not do mutator "${mutator}"`)
      row[col] = setOf(ms)
    }
  }

  /** ovsdb-server drops Port and Interface rows nothing refers to. */
  function collect(tbls: Tables): void {
    const refs = (table: string, col: string): Set<string> => new Set([...tbls[table]!.values()].flatMap((r) => members(get(table, r, col)).map((u) => (u as [string, string])[1])))
    const ports = refs('Bridge', 'ports')
    for (const u of [...tbls.Port!.keys()]) if (!ports.has(u)) tbls.Port!.delete(u)
    const ifaces = refs('Port', 'interfaces')
    for (const u of [...tbls.Interface!.keys()]) if (!ifaces.has(u)) tbls.Interface!.delete(u)
  }

  function transact(ops: Array<Record<string, unknown>>): unknown[] {
    const work: Tables = Object.fromEntries(Object.entries(tables).map(([n, tb]) => [n, new Map([...tb].map(([u, r]) => [u, structuredClone(r)]))]))
    const named = new Map<string, string>()
    const results: unknown[] = []
    try {
      for (const op of ops) {
        const table = op.table as string
        const where = (op.where as unknown[] | undefined) ?? []
        switch (op.op) {
          case 'comment':
            results.push({})
            break
          case 'select':
            results.push({ rows: select(work, table, where).map(([u, r]) => project(table, u, r, op.columns as string[] | undefined)) })
            break
          case 'insert': {
            const u = newUuid()
            if (op['uuid-name']) named.set(op['uuid-name'] as string, u)
            work[table]!.set(u, resolve(op.row, named) as Row)
            results.push({ uuid: ['uuid', u] })
            break
          }
          case 'update': {
            const hit = select(work, table, where)
            for (const [, r] of hit) Object.assign(r, resolve(op.row, named))
            results.push({ count: hit.length })
            break
          }
          case 'mutate': {
            const hit = select(work, table, where)
            for (const [, r] of hit) for (const m of op.mutations as Array<[string, string, unknown]>) mutate(table, r, [m[0], m[1], resolve(m[2], named)])
            results.push({ count: hit.length })
            break
          }
          case 'delete': {
            const hit = select(work, table, where)
            for (const [u] of hit) work[table]!.delete(u)
            results.push({ count: hit.length })
            break
          }
          case 'wait': {
            const got = select(work, table, where).map(([u, r]) => project(table, u, r, op.columns as string[]))
            const want = op.rows as Row[]
            const same = got.length === want.length && got.every((g) => want.some((w) => Object.keys(w).every((c) => equal(g[c], w[c]))))
            if (same !== (op.until === '==')) throw new OpError('timed out', '"wait" timed out')
            results.push({})
            break
          }
          default:
            throw new OpError('unknown operation', String(op.op))
        }
      }
    } catch (err) {
      if (!(err instanceof OpError)) throw err
      return [...results, { error: err.error, details: err.details }, ...ops.slice(results.length + 1).map(() => null)]
    }
    collect(work)
    const before = [...tables.Open_vSwitch!.values()][0]!.next_cfg as number
    tables = work
    const ovs = [...tables.Open_vSwitch!.values()][0]!
    if ((ovs.next_cfg as number) > before) setTimeout(applyConfig, 5)
    return results
  }

  /** ovs-vswitchd: open the new interfaces, then report the configuration applied. */
  function applyConfig(): void {
    for (const [, r] of tables.Interface!) {
      if (members(r.ofport ?? setOf([])).length > 0 || members(r.error ?? setOf([])).length > 0) continue
      const v = vswitchd(r.name as string)
      if (v.ofport !== undefined) r.ofport = v.ofport
      if (v.error !== undefined) r.error = v.error
      if (v.linkState !== undefined) r.link_state = v.linkState
    }
    const [u, ovs] = [...tables.Open_vSwitch!.entries()][0]!
    const old = ovs.cur_cfg
    ovs.cur_cfg = ovs.next_cfg
    for (const m of monitors) if (!m.sock.destroyed) m.send({ id: null, method: 'update', params: [m.id, { Open_vSwitch: { [u]: { old: { cur_cfg: old }, new: { cur_cfg: ovs.cur_cfg } } } }] })
  }

  const srv = await fakeOvsdbServer(t, (msg, send, sock) => {
    if (msg.method === 'transact') {
      send({ id: msg.id, result: transact(msg.params.slice(1) as Array<Record<string, unknown>>), error: null })
    } else if (msg.method === 'monitor') {
      monitors.push({ id: msg.params[1], sock, send })
      const [u, ovs] = [...tables.Open_vSwitch!.entries()][0]!
      send({ id: msg.id, result: { Open_vSwitch: { [u]: { new: { cur_cfg: ovs.cur_cfg } } } }, error: null })
    } else if (msg.method === 'echo') {
      send({ id: msg.id, result: msg.params, error: null })
    } else if (msg.id !== null && msg.id !== undefined && msg.method) {
      send({ id: msg.id, result: null, error: { error: 'unknown method', details: msg.method } })
    }
  })

  const rows = (table: string): Row[] => [...(tables[table]?.entries() ?? [])].map(([u, r]) => ({ _uuid: u, ...r }))
  return {
    path: srv.path,
    seen: srv.seen,
    transactions: () => srv.seen.filter((m) => (m as RpcMessage).method === 'transact').map((m) => (m as RpcMessage).params.slice(1) as Array<Record<string, unknown>>),
    rows,
    row: (table, name) => rows(table).find((r) => r.name === name),
    addBridge(name, o = {}) {
      const portUuids: unknown[] = []
      for (const p of [{ name, ofport: 65534, linkState: 'up' } as FakePort, ...(o.ports ?? [])]) {
        const iu = newUuid()
        tables.Interface!.set(iu, {
          name: p.iface ?? p.name,
          ...(p.ofport !== undefined ? { ofport: p.ofport } : {}),
          ...(p.error !== undefined ? { error: p.error } : {}),
          ...(p.linkState !== undefined ? { link_state: p.linkState } : {}),
        })
        const pu = newUuid()
        tables.Port!.set(pu, {
          name: p.name,
          interfaces: ['uuid', iu],
          tag: p.tag ?? setOf([]),
          trunks: setOf(p.trunks ?? []),
          external_ids: mapOf(p.externalIds ?? {}),
        })
        portUuids.push(['uuid', pu])
      }
      const bu = newUuid()
      tables.Bridge!.set(bu, { name, ports: setOf(portUuids), datapath_type: o.datapathType ?? 'netdev', datapath_version: '<built-in>', external_ids: mapOf(o.externalIds ?? {}) })
      const ovs = [...tables.Open_vSwitch!.values()][0]!
      ovs.bridges = setOf([...members(ovs.bridges ?? setOf([])), ['uuid', bu]])
    },
  }
}

// --- a fake ovs-vsctl ---

export interface VsctlAnswer {
  code?: number
  stdout?: string
  stderr?: string
  /** operations to `transact` on the database it was pointed at (--db=unix:PATH) before it exits, as add-br would */
  transact?: Array<Record<string, unknown>>
}

/**
 * An `ovs-vsctl` first on PATH for the test: call N gets answers[N-1] (the last one repeats) and
 * its argv is recorded. A node script, so that like the real one it can write through OVSDB.
 */
export async function fakeVsctl(t: ExecutionContext, answers: VsctlAnswer[]): Promise<{ calls: () => Promise<string[][]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pt-vsctl-'))
  await writeFile(join(dir, 'answers.json'), JSON.stringify(answers))
  await writeFile(join(dir, 'count'), '0')
  const script = `#!${process.execPath}
const fs = require('fs')
const dir = ${JSON.stringify(dir)}
const n = Number(fs.readFileSync(dir + '/count', 'utf8')) + 1
fs.writeFileSync(dir + '/count', String(n))
fs.writeFileSync(dir + '/argv.' + n, JSON.stringify(process.argv.slice(2)))
const answers = JSON.parse(fs.readFileSync(dir + '/answers.json', 'utf8'))
const a = answers[Math.min(n, answers.length) - 1] || {}
const done = () => { process.stdout.write(a.stdout || ''); process.stderr.write(a.stderr || ''); process.exit(a.code || 0) }
const db = process.argv.find((x) => x.startsWith('--db=unix:'))
if (!a.transact || !db) done()
else {
  const s = require('net').createConnection(db.slice('--db=unix:'.length), () => s.write(JSON.stringify({ method: 'transact', params: ['Open_vSwitch', ...a.transact], id: 1 })))
  s.once('data', () => { s.destroy(); done() })
}
`
  await writeFile(join(dir, 'ovs-vsctl'), script)
  await chmod(join(dir, 'ovs-vsctl'), 0o755)
  const before = process.env.PATH
  process.env.PATH = `${dir}:${before ?? ''}`
  t.teardown(async () => {
    process.env.PATH = before
    await rm(dir, { recursive: true, force: true })
  })
  return {
    calls: async () => {
      const n = Number(await readFile(join(dir, 'count'), 'utf8'))
      const out: string[][] = []
      for (let i = 1; i <= n; i++) out.push(JSON.parse(await readFile(join(dir, `argv.${i}`), 'utf8')) as string[])
      return out
    },
  }
}

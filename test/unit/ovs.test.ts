// lib/ovs without OVS: argv construction and datapath choice (pure); the driver over OVSDB against
// an in-memory fake ovsdb-server; the ovs-vsctl calls it still makes (bridges, del-port) against a
// fake ovs-vsctl on PATH that records its argv and, like the real one, writes through the database.

import test from 'ava'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { configure } from '../../lib/config.js'
import { PlumbError } from '../../lib/errors.js'
import type { ErrorCode } from '../../lib/errors.js'
import * as ovs from '../../lib/ovs/index.js'
import { joinPorts } from '../../lib/ovs/parse.js'
import { vsctlError } from '../../lib/ovs/run.js'
import { fakeOvsdb, fakeVsctl } from '../helpers/fake-ovsdb.js'

const MARKS = { 'plumb-owner': 'plumb', 'plumb-guest': 'pid:12', 'plumb-ifname': 'eth1', 'plumb-op': 'ovs-port' }

// --- argv (pure) ---

test('addPortArgv: an access port is one transaction with tag, cleared trunks and quoted marks on the Port row', (t) => {
  t.deepEqual(ovs.addPortArgv('br0', 'vp0', { tag: 10, externalIds: MARKS }), [
    '--may-exist', 'add-port', 'br0', 'vp0',
    '--', 'set', 'port', 'vp0', 'tag=10', 'trunks=[]',
    'external_ids:plumb-owner=plumb', 'external_ids:plumb-guest="pid:12"', 'external_ids:plumb-ifname=eth1', 'external_ids:plumb-op=ovs-port',
  ])
})

test('addPortArgv: trunks are deduplicated and sorted, tag cleared; neither clears both', (t) => {
  t.deepEqual(ovs.addPortArgv('br0', 'vp0', { trunks: [20, 10, 20], externalIds: {} }), ['--may-exist', 'add-port', 'br0', 'vp0', '--', 'set', 'port', 'vp0', 'tag=[]', 'trunks=10,20'])
  t.deepEqual(ovs.addPortArgv('br0', 'vp0', { externalIds: { 'plumb-owner': 'plumb' } }).slice(8), ['tag=[]', 'trunks=[]', 'external_ids:plumb-owner=plumb'])
})

test('addPortArgv refuses bad input before anything runs', (t) => {
  const usage = (f: () => unknown, re: RegExp): void => {
    const e = t.throws(f, { instanceOf: PlumbError })
    t.is(e?.code, 'USAGE')
    t.regex(e?.message ?? '', re)
  }
  usage(() => ovs.addPortArgv('br0', 'vp0', { tag: 10, trunks: [20], externalIds: {} }), /not both/)
  usage(() => ovs.addPortArgv('br0', 'vp0', { tag: 4096, externalIds: {} }), /not a VLAN id/)
  usage(() => ovs.addPortArgv('br0', 'vp0', { tag: 1.5, externalIds: {} }), /not a VLAN id/)
  usage(() => ovs.addPortArgv('br0', 'vp0', { trunks: [], externalIds: {} }), /trunks is empty/)
  usage(() => ovs.addPortArgv('br0', 'a-name-of-16byte', { externalIds: {} }), /longer than 15 bytes/)
  usage(() => ovs.addPortArgv('--all', 'vp0', { externalIds: {} }), /characters/)
  usage(() => ovs.addPortArgv('br0', 'vp0', { externalIds: { 'bad key': 'x' } }), /external_ids key/)
})

test('createBridgeArgv: datapath and marks ride in the add-br transaction; auto follows the kernel', (t) => {
  t.deepEqual(ovs.createBridgeArgv('br0', { datapathType: 'netdev', mark: { 'plumb-owner': 'plumb', 'plumb-op': 'bridge' } }), [
    'add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', 'external_ids:plumb-owner=plumb', 'external_ids:plumb-op=bridge',
  ])
  t.deepEqual(ovs.createBridgeArgv('br0', { datapathType: 'system' }), ['add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=system'])
  // The default is auto: whatever this kernel has.
  t.is(ovs.createBridgeArgv('br0')[6], `datapath_type=${ovs.kernelHasOvsDatapath() ? 'system' : 'netdev'}`)
  t.throws(() => ovs.createBridgeArgv('br0', { datapathType: 'fast' as never }), { instanceOf: PlumbError, message: /unknown OVS datapath type/ })
})

test('delete argv and the dry-run shell line', (t) => {
  t.deepEqual(ovs.deleteBridgeArgv('br0'), ['--if-exists', 'del-br', 'br0'])
  t.deepEqual(ovs.delPortArgv('vp0'), ['--if-exists', 'del-port', 'vp0'])
  t.deepEqual(ovs.delPortArgv('vp0', { bridge: 'br0' }), ['--if-exists', 'del-port', 'br0', 'vp0'])
  t.is(
    ovs.vsctlLine(ovs.addPortArgv('br0', 'vp0', { tag: 10, externalIds: { 'plumb-guest': "it's web" } })),
    `ovs-vsctl --may-exist add-port br0 vp0 -- set port vp0 tag=10 'trunks=[]' 'external_ids:plumb-guest="it'\\''s web"'`,
  )
})

test('ovsdbString quotes only what needs it, with escapes ovsdb reads', (t) => {
  t.is(ovs.ovsdbString('web.1'), 'web.1')
  t.is(ovs.ovsdbString('/run/netns/x'), '"/run/netns/x"')
  t.is(ovs.ovsdbString('a "b"'), '"a \\"b\\""')
})

// --- datapath choice ---

test('resolveDatapathType: system with a loaded or installed openvswitch module, netdev without', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'pt-ovsroot-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  t.is(ovs.resolveDatapathType('auto', root), 'netdev')
  t.is(ovs.resolveDatapathType('system', root), 'system')
  const modDir = join(root, 'lib/modules', release(), 'kernel/net/openvswitch')
  await mkdir(modDir, { recursive: true })
  await writeFile(join(modDir, 'openvswitch.ko.xz'), '')
  t.is(ovs.resolveDatapathType('auto', root), 'system')
  const loaded = await mkdtemp(join(tmpdir(), 'pt-ovsroot-'))
  t.teardown(() => rm(loaded, { recursive: true, force: true }))
  await mkdir(join(loaded, 'sys/module/openvswitch'), { recursive: true })
  t.is(ovs.resolveDatapathType('auto', loaded), 'system')
})


// --- OVSDB rows ---

const uuid = (u: string): unknown => ['uuid', u]
const EMPTY_SET = ['set', []]

test('joinPorts joins Port, Bridge and Interface rows; one-member sets are bare atoms', (t) => {
  const ports = [
    { _uuid: uuid('p2'), name: 'vp2', tag: EMPTY_SET, trunks: 30, external_ids: ['map', [['plumb-owner', 'plumb']]], interfaces: uuid('i2') },
    { _uuid: uuid('p1'), name: 'vp1', tag: EMPTY_SET, trunks: ['set', [20, 10]], external_ids: ['map', []], interfaces: uuid('i1') },
    { _uuid: uuid('p3'), name: 'vp3', tag: 7, trunks: EMPTY_SET, external_ids: ['map', [['plumb-owner', 'plumb']]], interfaces: ['set', [uuid('i4'), uuid('i3')]] },
  ]
  const bridges = [
    { name: 'br1', ports: ['set', [uuid('p1'), uuid('p2')]] },
    { name: 'br2', ports: uuid('p3') },
  ]
  const ifaces = [
    { _uuid: uuid('i1'), name: 'vp1', ofport: 1, error: EMPTY_SET, link_state: 'up' },
    { _uuid: uuid('i2'), name: 'vp2', ofport: -1, error: 'could not open network device vp2 (No such device)', link_state: EMPTY_SET },
    { _uuid: uuid('i3'), name: 'vp3', ofport: EMPTY_SET, error: EMPTY_SET },
    { _uuid: uuid('i4'), name: 'vp3b', ofport: 9, error: EMPTY_SET },
  ]
  t.deepEqual(joinPorts(ports, bridges, ifaces), [
    { name: 'vp1', uuid: 'p1', bridge: 'br1', trunks: [10, 20], externalIds: {}, ofport: 1, linkState: 'up' },
    { name: 'vp2', uuid: 'p2', bridge: 'br1', trunks: [30], externalIds: { 'plumb-owner': 'plumb' }, ifaceError: 'could not open network device vp2 (No such device)', ofport: -1 },
    // of a bond's interfaces, the one named like the port
    { name: 'vp3', uuid: 'p3', bridge: 'br2', tag: 7, trunks: [], externalIds: { 'plumb-owner': 'plumb' } },
  ])
})

// --- the driver over OVSDB (serial: the database setting and the connection are process-wide) ---

test.serial('isOvsBridge and getBridge read the Bridge row over OVSDB, without ovs-vsctl', async (t) => {
  const db = await fakeOvsdb(t)
  const vsctl = await fakeVsctl(t, [{ code: 99 }])
  db.addBridge('br0', { externalIds: { 'plumb-owner': 'plumb' } })
  t.true(await ovs.isOvsBridge('br0'))
  t.false(await ovs.isOvsBridge('br1'))
  t.deepEqual(await ovs.getBridge('br0'), { name: 'br0', datapathType: 'netdev', datapathVersion: '<built-in>', externalIds: { 'plumb-owner': 'plumb' }, ofport: 65534 })
  t.is(await ovs.getBridge('br1'), undefined)
  t.deepEqual(await vsctl.calls(), [])
  t.true(db.transactions().every((ops) => ops.every((op) => op.op === 'select')), 'reads only')
})

test.serial('getPort, lookupBridgeAndPort, listPlumbPorts: the Port row with its bridge and Interface', async (t) => {
  const db = await fakeOvsdb(t)
  db.addBridge('br0', {
    ports: [
      { name: 'vp0', tag: 10, externalIds: MARKS, ofport: 3, linkState: 'up' },
      { name: 'vp1', iface: 'vp1i', trunks: [20, 10], ofport: 4 },
    ],
  })
  db.addBridge('br1', { ports: [{ name: 'vp2', externalIds: { 'plumb-owner': 'plumb' }, ofport: -1, error: 'could not open network device vp2 (No such device)' }] })
  // the Port row's uuid, as the fake database made it
  const uuidOf = (name: string): string => db.rows('Port').find((r) => r.name === name)!._uuid as string
  const vp0 = { name: 'vp0', uuid: uuidOf('vp0'), bridge: 'br0', tag: 10, trunks: [], externalIds: MARKS, ofport: 3, linkState: 'up' }
  t.deepEqual(await ovs.getPort('vp0'), vp0)
  // an interface not named like its port is read by uuid, in a second transaction
  t.deepEqual(await ovs.getPort('vp1'), { name: 'vp1', uuid: uuidOf('vp1'), bridge: 'br0', trunks: [10, 20], externalIds: {}, ofport: 4 })
  t.is(await ovs.getPort('vp9'), undefined)
  t.deepEqual(await ovs.lookupBridgeAndPort('br0', 'vp0'), { bridgeExists: true, datapathType: 'netdev', port: vp0 })
  t.deepEqual(await ovs.lookupBridgeAndPort('br0', 'vp9'), { bridgeExists: true, datapathType: 'netdev', port: undefined })
  t.deepEqual(await ovs.lookupBridgeAndPort('nobr', 'vp0'), { bridgeExists: false, port: vp0 })
  t.deepEqual(await ovs.lookupBridgeAndPort('br1'), { bridgeExists: true, datapathType: 'netdev', port: undefined })
  // what OVS holds under a name: a bridge, a port, a bond's member interface, nothing
  t.deepEqual(await ovs.rowsNamed('br1'), { bridge: true })
  t.deepEqual(await ovs.rowsNamed('vp0'), { bridge: false, port: { name: 'vp0', bridge: 'br0' } })
  t.deepEqual(await ovs.rowsNamed('vp1i'), { bridge: false, port: { name: 'vp1', bridge: 'br0' } })
  t.deepEqual(await ovs.rowsNamed('vp9'), { bridge: false })
  // every bridge with its ports (not its own local port), for ls
  t.deepEqual(
    (await ovs.listBridges()).map((b) => [b.name, b.ports.map((p) => `${p.name}:${p.tag ?? p.trunks.join(',')}`)]),
    [
      ['br0', ['vp0:10', 'vp1:10,20']],
      ['br1', ['vp2:']],
    ],
  )
  t.deepEqual(
    (await ovs.listPlumbPorts()).map((p) => [p.name, p.bridge, p.ifaceError ?? '']),
    [
      ['vp0', 'br0', ''],
      ['vp2', 'br1', 'could not open network device vp2 (No such device)'],
    ],
  )
})

/** A Port row of the fake database, its columns as plain values. */
function portRow(db: Awaited<ReturnType<typeof fakeOvsdb>>, name: string) {
  const r = db.row('Port', name)
  if (!r) return undefined
  const set = (v: unknown): unknown[] => (Array.isArray(v) && v[0] === 'set' ? (v[1] as unknown[]) : [v])
  return {
    uuid: r._uuid,
    tag: set(r.tag ?? EMPTY_SET),
    trunks: set(r.trunks ?? EMPTY_SET),
    externalIds: Object.fromEntries((r.external_ids as [string, [string, string][]])[1]),
    bridge: db.rows('Bridge').find((b) => JSON.stringify(b.ports).includes(String(r._uuid)))?.name,
  }
}

test.serial('addPort of a new port: one transaction inserts the marked rows, waits for ovs-vswitchd, reads the port back', async (t) => {
  const db = await fakeOvsdb(t)
  const vsctl = await fakeVsctl(t, [{ code: 99 }])
  db.addBridge('br0')
  const info = await ovs.addPort('br0', 'vp0', { trunks: [20, 10, 20], externalIds: MARKS })
  t.like(info, { name: 'vp0', bridge: 'br0', trunks: [10, 20], externalIds: MARKS })
  t.true((info.ofport ?? 0) > 0, 'ovs-vswitchd numbered it before addPort returned')
  t.deepEqual(portRow(db, 'vp0'), { uuid: portRow(db, 'vp0')?.uuid, tag: [], trunks: [10, 20], externalIds: MARKS, bridge: 'br0' })
  t.truthy(db.row('Interface', 'vp0'))
  const ovsRow = db.rows('Open_vSwitch')[0]!
  t.is(ovsRow.cur_cfg, ovsRow.next_cfg, 'the change was applied')
  // The one write: refuses (wait) rather than touch an existing row, and asks vswitchd to apply it.
  const writes = db.transactions().filter((ops) => ops.some((op) => op.op !== 'select'))
  t.is(writes.length, 1)
  t.deepEqual(
    writes[0]!.map((op) => `${String(op.op)} ${String(op.table)}`),
    ['wait Bridge', 'wait Port', 'wait Interface', 'insert Interface', 'insert Port', 'mutate Bridge', 'mutate Open_vSwitch', 'select Open_vSwitch'],
  )
  t.deepEqual(await vsctl.calls(), [], 'no ovs-vsctl on the way')
})

test.serial('addPort: ovs-vswitchd cannot open the device -> FAILED with a hint, and the rows are removed again', async (t) => {
  const db = await fakeOvsdb(t, { vswitchd: (name) => ({ ofport: -1, error: `could not open network device ${name} (No such device)` }) })
  db.addBridge('br0')
  const e = await t.throwsAsync(ovs.addPort('br0', 'vp0', { tag: 10, externalIds: MARKS }), { instanceOf: PlumbError })
  t.is(e?.code, 'FAILED')
  t.is(e?.message, 'failed to add OVS port "vp0" to bridge "br0": could not open network device vp0 (No such device); the port row was removed again')
  t.regex(e?.hint ?? '', /create the interface "vp0"/)
  t.deepEqual(e?.rolledBack, ['ovs-vsctl --if-exists del-port br0 vp0'])
  t.is(db.row('Port', 'vp0'), undefined)
  t.is(db.row('Interface', 'vp0'), undefined)
})

test.serial("addPort onto a port row that is not plumb's: CONFLICT, and the row is left exactly as it was", async (t) => {
  const db = await fakeOvsdb(t)
  db.addBridge('br0', { ports: [{ name: 'vp0', tag: 5, externalIds: { owner: 'someone' }, ofport: 3 }] })
  const before = portRow(db, 'vp0')
  const e = await t.throwsAsync(ovs.addPort('br0', 'vp0', { tag: 10, externalIds: MARKS }), { instanceOf: PlumbError })
  t.is(e?.code, 'CONFLICT')
  t.is(e?.message, `failed to add OVS port "vp0": OVS port "vp0" exists and is not plumb's (no external_ids:plumb-owner=plumb)`)
  t.deepEqual(portRow(db, 'vp0'), before)
})

test.serial("re-adding plumb's own port re-sets that row in place: tag and trunks as asked, marks given replaced, others kept", async (t) => {
  const db = await fakeOvsdb(t)
  db.addBridge('br0', { ports: [{ name: 'vp0', trunks: [20], externalIds: { ...MARKS, 'plumb-extra': 'x' }, ofport: 3 }] })
  const before = portRow(db, 'vp0')
  const info = await ovs.addPort('br0', 'vp0', { tag: 30, externalIds: { 'plumb-owner': 'plumb', 'plumb-guest': 'pid:7' } })
  t.like(info, { tag: 30, trunks: [] })
  t.deepEqual(portRow(db, 'vp0'), { uuid: before?.uuid, tag: [30], trunks: [], externalIds: { ...MARKS, 'plumb-guest': 'pid:7', 'plumb-extra': 'x' }, bridge: 'br0' })
})

test.serial('addPort refusals: plumb\'s port on another bridge (in ovs-vsctl\'s words), a missing bridge, an interface in another port', async (t) => {
  const db = await fakeOvsdb(t)
  db.addBridge('br1', { ports: [{ name: 'vp0', tag: 10, externalIds: MARKS, ofport: 3 }, { name: 'bond0', iface: 'vx', ofport: 4 }] })
  db.addBridge('br2')
  const moved = await t.throwsAsync(ovs.addPort('br2', 'vp0', { tag: 20, externalIds: MARKS }), { instanceOf: PlumbError })
  t.is(moved?.code, 'CONFLICT')
  t.is(moved?.message, 'failed to add OVS port "vp0": "--may-exist add-port br2 vp0" but vp0 is actually attached to bridge br1')
  t.like(portRow(db, 'vp0'), { tag: [10], bridge: 'br1' })
  const nf = await t.throwsAsync(ovs.addPort('nobr', 'vq', { externalIds: MARKS }), { instanceOf: PlumbError })
  t.is(nf?.code, 'NOT_FOUND')
  t.is(nf?.message, 'failed to add OVS port "vq": no bridge named nobr')
  const taken = await t.throwsAsync(ovs.addPort('br2', 'vx', { externalIds: MARKS }), { instanceOf: PlumbError })
  t.is(taken?.code, 'CONFLICT')
  t.regex(taken?.message ?? '', /an interface named vx already exists \(in another port\)/)
  t.is(db.row('Port', 'vq'), undefined)
  t.is(db.row('Port', 'vx'), undefined)
})

test.serial('ovsAvailable: the version over OVSDB', async (t) => {
  await fakeOvsdb(t, { version: '3.1.0' })
  t.deepEqual(await ovs.ovsAvailable(), { ok: true, version: '3.1.0' })
})

test.serial('ovsAvailable: ovs_version unset means ovs-vswitchd never ran', async (t) => {
  await fakeOvsdb(t, { version: '' })
  const a = await ovs.ovsAvailable()
  t.false(a.ok)
  t.regex(a.reason ?? '', /ovs-vswitchd has not started/)
})

test.serial('ovsAvailable: nothing listening is "not running" with the start hint, never a throw', async (t) => {
  const before = configure({ ovsdbSocket: '/nonexistent/pt-ovsdb.sock' })
  t.teardown(() => void configure(before))
  const a = await ovs.ovsAvailable()
  t.false(a.ok)
  t.regex(a.reason ?? '', /Open vSwitch is not running.*\(start it: .*ovs-ctl start\)/)
})

// --- what still runs ovs-vsctl: bridges and del-port ---

/** The argv every ovs-vsctl call starts with: the database the OVSDB client uses, and a timeout. */
const vsctlHead = (db: { path: string }): string[] => [`--db=unix:${db.path}`, '--timeout=5']

test.serial("createBridge leaves an existing bridge as it is, saying whether it is plumb's; no ovs-vsctl runs", async (t) => {
  const db = await fakeOvsdb(t)
  const vsctl = await fakeVsctl(t, [{ code: 99 }])
  db.addBridge('br0', { datapathType: '' })
  db.addBridge('br1', { externalIds: { 'plumb-owner': 'plumb' } })
  t.deepEqual(await ovs.createBridge('br0', { datapathType: 'netdev', mark: { 'plumb-owner': 'plumb' } }), { created: false, owned: false, datapathType: 'system' })
  t.deepEqual(await ovs.createBridge('br1', { datapathType: 'netdev' }), { created: false, owned: true, datapathType: 'netdev' })
  t.deepEqual(await vsctl.calls(), [])
})

/** What `ovs-vsctl add-br NAME -- set bridge NAME datapath_type=T` writes (the local Interface: as ovs-vswitchd left it). */
const addBrOps = (name: string, dp: string, version: string, iface: Record<string, unknown>, ids: Array<[string, string]> = []) => [
  { op: 'insert', table: 'Interface', row: { name, ...iface }, 'uuid-name': 'i' },
  { op: 'insert', table: 'Port', row: { name, interfaces: ['named-uuid', 'i'] }, 'uuid-name': 'p' },
  { op: 'insert', table: 'Bridge', row: { name, ports: ['set', [['named-uuid', 'p']]], datapath_type: dp, datapath_version: version, external_ids: ['map', ids] } },
]

test.serial('createBridge: add-br exits 0 but the datapath never opened -> PlumbError naming why, and del-br', async (t) => {
  const db = await fakeOvsdb(t)
  const vsctl = await fakeVsctl(t, [
    { code: 0, stderr: "ovs-vsctl: Error detected while setting up 'ptnobr'.  See ovs-vswitchd log for details.\n", transact: addBrOps('ptnobr', 'system', '', {}, [['plumb-owner', 'plumb']]) },
    { code: 0 },
  ])
  const e = await t.throwsAsync(ovs.createBridge('ptnobr', { datapathType: 'system', mark: { 'plumb-owner': 'plumb' } }), { instanceOf: PlumbError })
  t.is(e?.code, 'FAILED')
  t.regex(e?.message ?? '', /^failed to create OVS bridge "ptnobr": ovs-vswitchd could not open its datapath \(system: is the openvswitch kernel module there\?/)
  t.regex(e?.message ?? '', /\(ovs-vsctl said: Error detected while setting up 'ptnobr'/)
  t.regex(e?.message ?? '', /the half-made bridge was deleted again$/)
  t.regex(e?.hint ?? '', /netdev/)
  t.deepEqual(e?.rolledBack, ['ovs-vsctl --if-exists del-br ptnobr'])
  t.deepEqual(await vsctl.calls(), [
    [...vsctlHead(db), 'add-br', 'ptnobr', '--', 'set', 'bridge', 'ptnobr', 'datapath_type=system', 'external_ids:plumb-owner=plumb'],
    [...vsctlHead(db), '--if-exists', 'del-br', 'ptnobr'],
  ])
})

test.serial('createBridge: success needs the row, the datapath, the local port and the kernel device', async (t) => {
  // "lo" stands in for the bridge's kernel device: the one interface every netns has.
  const db = await fakeOvsdb(t)
  const vsctl = await fakeVsctl(t, [{ code: 0, transact: addBrOps('lo', 'netdev', '<built-in>', { ofport: 65534 }) }])
  t.deepEqual(await ovs.createBridge('lo', { datapathType: 'netdev' }), { created: true, owned: false, datapathType: 'netdev' })
  t.is((await vsctl.calls()).length, 1)
  t.like(db.row('Bridge', 'lo'), { datapath_type: 'netdev' })
})

test.serial('deleteBridgeIfEmptyAndOurs: only an empty bridge plumb made goes, through list-ports and del-br', async (t) => {
  const db = await fakeOvsdb(t)
  const vsctl = await fakeVsctl(t, [{ stdout: 'vp9\n' }, { stdout: '' }, { code: 0 }])
  db.addBridge('fb')
  db.addBridge('pb', { externalIds: { 'plumb-owner': 'plumb' } })
  t.false(await ovs.deleteBridgeIfEmptyAndOurs('fb'), "not plumb's")
  t.false(await ovs.deleteBridgeIfEmptyAndOurs('pb'), 'still has a port')
  t.true(await ovs.deleteBridgeIfEmptyAndOurs('pb'))
  t.false(await ovs.deleteBridgeIfEmptyAndOurs('nobr'), 'gone already')
  t.deepEqual(await vsctl.calls(), [
    [...vsctlHead(db), 'list-ports', 'pb'],
    [...vsctlHead(db), 'list-ports', 'pb'],
    [...vsctlHead(db), '--if-exists', 'del-br', 'pb'],
  ])
})

test.serial('delPort: a bridge that is gone is done, not an error; without a bridge the same words are NOT_FOUND', async (t) => {
  const db = await fakeOvsdb(t)
  const vsctl = await fakeVsctl(t, [{ code: 1, stderr: 'ovs-vsctl: no bridge named br9\n' }])
  await t.notThrowsAsync(ovs.delPort('vp0', { bridge: 'br9' }))
  const e = await t.throwsAsync(ovs.deleteBridge('br9'), { instanceOf: PlumbError })
  t.is(e?.code, 'NOT_FOUND')
  t.is(e?.message, 'failed to delete OVS bridge "br9": no bridge named br9')
  t.deepEqual(await vsctl.calls(), [
    [...vsctlHead(db), '--if-exists', 'del-port', 'br9', 'vp0'],
    [...vsctlHead(db), '--if-exists', 'del-br', 'br9'],
  ])
})

test.serial('ovs-vsctl not installed: UNSUPPORTED (exit 5) naming the package', async (t) => {
  const empty = await mkdtemp(join(tmpdir(), 'pt-nopath-'))
  const before = process.env.PATH
  process.env.PATH = empty
  t.teardown(async () => {
    process.env.PATH = before
    await rm(empty, { recursive: true, force: true })
  })
  const e = await t.throwsAsync(ovs.deleteBridge('br0'), { instanceOf: PlumbError })
  t.is(e?.code, 'UNSUPPORTED')
  t.is(e?.exitCode, 5)
  t.regex(e?.message ?? '', /^failed to delete OVS bridge "br0": ovs-vsctl not found/)
  t.regex(e?.hint ?? '', /openvswitch-switch/)
})

// --- ovs-vsctl's failures, from its exit and its words ---

const C = { verb: 'add', object: 'OVS bridge', name: 'br0' }
const vsctlCases: Array<[what: string, res: { exitCode?: number; signal?: string; stderr: string }, code: ErrorCode, message: RegExp]> = [
  ['ovsdb down', { exitCode: 1, stderr: 'ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed (No such file or directory)\n' }, 'UNSUPPORTED', /^failed to add OVS bridge "br0": Open vSwitch is not running \(unix:.*No such file or directory\)\)$/],
  ['its own alarm', { signal: 'SIGALRM', stderr: '' }, 'UNSUPPORTED', /ovs-vsctl timed out after 5 s \(is ovs-vswitchd running\?\)$/],
  ['timeout text', { exitCode: 142, stderr: 'ovs-vsctl: timeout after 5 seconds\n' }, 'UNSUPPORTED', /timed out after 5 s/],
  ['not root', { exitCode: 1, stderr: 'ovs-vsctl: unix:/run/x: Permission denied\n' }, 'PERMISSION', /Permission denied$/],
  ['no bridge', { exitCode: 1, stderr: 'ovs-vsctl: no bridge named br9\n' }, 'NOT_FOUND', /: no bridge named br9$/],
  ['no row', { exitCode: 1, stderr: 'ovs-vsctl: no row "vp9" in table Port\n' }, 'NOT_FOUND', /no row "vp9" in table Port$/],
  ['exists', { exitCode: 1, stderr: 'ovs-vsctl: cannot create a bridge named br0 because a bridge named br0 already exists\n' }, 'CONFLICT', /already exists$/],
  ['other', { exitCode: 1, stderr: 'ovs-vsctl: something broke\novs-vsctl: The default log directory is "/var/log/openvswitch".\n' }, 'FAILED', /^failed to add OVS bridge "br0": something broke$/],
  ['silent', { exitCode: 3, stderr: '' }, 'FAILED', /: exit status 3$/],
]
for (const [what, res, code, message] of vsctlCases) {
  test(`vsctlError: ${what} -> ${code}`, (t) => {
    const e = vsctlError(C, res)
    t.is(e.code, code)
    t.regex(e.message, message)
    if (code === 'UNSUPPORTED') t.regex(e.hint ?? '', /ovs-ctl start/)
  })
}

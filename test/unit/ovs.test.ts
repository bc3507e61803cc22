// lib/ovs without OVS: argv construction, OVSDB JSON parsing, datapath choice and error mapping,
// driven through a fake ovs-vsctl (PLUMB_OVS_VSCTL) that records its argv and plays canned answers.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { PlumbError } from '../../lib/errors.js'
import * as ovs from '../../lib/ovs/index.js'
import { parseBridge, parsePorts, parseTables } from '../../lib/ovs/parse.js'

interface Answer {
  stdout?: string
  stderr?: string
  code?: number
}

/**
 * A fake ovs-vsctl answering call N with answers[N-1] (the last answer repeats), recording each
 * call's argv. PLUMB_OVS_VSCTL points at it for the test (tests here are serial: env is global).
 */
async function fakeVsctl(t: ExecutionContext, answers: Answer[]): Promise<{ calls: () => Promise<string[][]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pt-ovsfake-'))
  await writeFile(join(dir, 'count'), '0')
  for (const [i, a] of answers.entries()) {
    await writeFile(join(dir, `${i + 1}.out`), a.stdout ?? '')
    await writeFile(join(dir, `${i + 1}.err`), a.stderr ?? '')
    await writeFile(join(dir, `${i + 1}.code`), String(a.code ?? 0))
  }
  const script = `#!/bin/sh
d='${dir}'
n=$(( $(cat "$d/count") + 1 )); echo "$n" > "$d/count"
: > "$d/argv.$n"; for a in "$@"; do printf '%s\\n' "$a" >> "$d/argv.$n"; done
i=$n; [ "$i" -gt ${answers.length} ] && i=${answers.length}
cat "$d/$i.out"; cat "$d/$i.err" >&2
exit "$(cat "$d/$i.code")"
`
  const bin = join(dir, 'ovs-vsctl')
  await writeFile(bin, script)
  await chmod(bin, 0o755)
  const before = process.env.PLUMB_OVS_VSCTL
  process.env.PLUMB_OVS_VSCTL = bin
  t.teardown(async () => {
    if (before === undefined) delete process.env.PLUMB_OVS_VSCTL
    else process.env.PLUMB_OVS_VSCTL = before
    await rm(dir, { recursive: true, force: true })
  })
  return {
    calls: async () => {
      const n = Number(await readFile(join(dir, 'count'), 'utf8'))
      const out: string[][] = []
      for (let i = 1; i <= n; i++) out.push((await readFile(join(dir, `argv.${i}`), 'utf8')).split('\n').filter((l) => l !== ''))
      return out
    },
  }
}

const table = (headings: string[], rows: unknown[][]): string => JSON.stringify({ data: rows, headings })
const uuid = (u: string): unknown => ['uuid', u]
const EMPTY_SET = ['set', []]

// The three tables readPortsArgv asks for, shaped as OVS 3.1 prints them (a one-member set is the bare atom).
function portTables(ports: unknown[][], bridges: unknown[][], ifaces: unknown[][]): string {
  return [
    table(['_uuid', 'name', 'tag', 'trunks', 'external_ids', 'interfaces'], ports),
    table(['_uuid', 'name', 'ports'], bridges),
    table(['_uuid', 'name', 'ofport', 'error', 'link_state'], ifaces),
  ].join('\n') + '\n'
}

const MARKS = { 'plumb-owner': 'plumb', 'plumb-guest': 'pid:12', 'plumb-ifname': 'eth1', 'plumb-op': 'ovs-port' }
const marksMap = ['map', Object.entries(MARKS).sort()]

const GOOD_PORT = portTables(
  [[uuid('p1'), 'vp0', 10, EMPTY_SET, marksMap, uuid('i1')]],
  [[uuid('b1'), 'br0', ['set', [uuid('p0'), uuid('p1')]]]],
  [[uuid('i0'), 'br0', 65534, EMPTY_SET, 'down'], [uuid('i1'), 'vp0', 3, EMPTY_SET, 'up']],
)

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

// --- parsing ---

test('parsePorts joins Port, Bridge and Interface rows; one-member sets are bare atoms', (t) => {
  const stdout = portTables(
    [
      [uuid('p2'), 'vp2', EMPTY_SET, 30, ['map', [['plumb-owner', 'plumb']]], uuid('i2')],
      [uuid('p1'), 'vp1', EMPTY_SET, ['set', [20, 10]], ['map', []], uuid('i1')],
      [uuid('p3'), 'vp3', 7, EMPTY_SET, ['map', [['plumb-owner', 'plumb']]], uuid('i3')],
    ],
    [
      [uuid('b1'), 'br1', ['set', [uuid('p1'), uuid('p2')]]],
      [uuid('b2'), 'br2', uuid('p3')],
    ],
    [
      [uuid('i1'), 'vp1', 1, EMPTY_SET, 'up'],
      [uuid('i2'), 'vp2', -1, 'could not open network device vp2 (No such device)', EMPTY_SET],
      [uuid('i3'), 'vp3', EMPTY_SET, EMPTY_SET],
    ],
  )
  t.deepEqual(parsePorts(stdout), [
    { name: 'vp1', bridge: 'br1', trunks: [10, 20], externalIds: {}, ofport: 1, linkState: 'up' },
    { name: 'vp2', bridge: 'br1', trunks: [30], externalIds: { 'plumb-owner': 'plumb' }, ifaceError: 'could not open network device vp2 (No such device)', ofport: -1 },
    { name: 'vp3', bridge: 'br2', tag: 7, trunks: [], externalIds: { 'plumb-owner': 'plumb' } },
  ])
})

test('parseBridge reads datapath, marks and the local port; no row is undefined', (t) => {
  const row = [
    table(['name', 'datapath_type', 'datapath_version', 'external_ids'], [['br0', 'netdev', '<built-in>', ['map', [['plumb-owner', 'plumb']]]]]),
    table(['_uuid', 'name', 'ofport', 'error'], [[uuid('i0'), 'br0', 65534, EMPTY_SET]]),
  ].join('\n')
  t.deepEqual(parseBridge(row), { name: 'br0', datapathType: 'netdev', datapathVersion: '<built-in>', externalIds: { 'plumb-owner': 'plumb' }, ofport: 65534 })
  t.is(parseBridge(`${table(['name'], [])}\n${table(['name'], [])}\n`), undefined)
})

test('malformed output is a FAILED PlumbError, not a crash', (t) => {
  t.throws(() => parseTables('Port vp0\n    tag: 10\n'), { instanceOf: PlumbError, message: /not JSON/ })
  t.throws(() => parseTables('{"rows":[]}'), { instanceOf: PlumbError, message: /not a table/ })
  t.throws(() => parsePorts(table(['name'], [])), { instanceOf: PlumbError, message: /expected 3 tables/ })
})

// --- through the fake binary ---

test.serial('isOvsBridge: br-exists with --timeout=5; exit 2 is "no", other failures throw', async (t) => {
  const fake = await fakeVsctl(t, [{ code: 0 }, { code: 2 }, { code: 1, stderr: 'ovs-vsctl: something broke\n' }])
  t.true(await ovs.isOvsBridge('br0'))
  t.false(await ovs.isOvsBridge('br1'))
  const e = await t.throwsAsync(ovs.isOvsBridge('br2'), { instanceOf: PlumbError })
  t.is(e?.message, 'failed to look up OVS bridge "br2": something broke')
  t.deepEqual(await fake.calls(), [
    ['--timeout=5', 'br-exists', 'br0'],
    ['--timeout=5', 'br-exists', 'br1'],
    ['--timeout=5', 'br-exists', 'br2'],
  ])
})

test.serial('getPort and listPlumbPorts: one JSON call each, by name / by the owner mark', async (t) => {
  const fake = await fakeVsctl(t, [{ stdout: GOOD_PORT }, { stdout: portTables([], [], []) }, { stdout: GOOD_PORT }])
  const want = { name: 'vp0', bridge: 'br0', tag: 10, trunks: [], externalIds: MARKS, ofport: 3, linkState: 'up' }
  t.deepEqual(await ovs.getPort('vp0'), want)
  t.is(await ovs.getPort('vp9'), undefined)
  t.deepEqual(await ovs.listPlumbPorts(), [want])
  const calls = await fake.calls()
  const tail = ['--', '--columns=_uuid,name,ports', 'list', 'Bridge', '--', '--columns=_uuid,name,ofport,error,link_state', 'list', 'Interface']
  t.deepEqual(calls[0], ['--timeout=5', '--format=json', '--', '--columns=_uuid,name,tag,trunks,external_ids,interfaces', 'find', 'Port', 'name=vp0', ...tail])
  t.is(calls[1]![6], 'name=vp9')
  t.is(calls[2]![6], 'external_ids:plumb-owner=plumb')
})

test.serial('addPort runs the transaction, then reads the port back', async (t) => {
  const fake = await fakeVsctl(t, [{ code: 0 }, { stdout: GOOD_PORT }])
  const info = await ovs.addPort('br0', 'vp0', { tag: 10, externalIds: MARKS })
  t.is(info.ofport, 3)
  const calls = await fake.calls()
  t.is(calls.length, 2)
  t.deepEqual(calls[0], ['--timeout=5', ...ovs.addPortArgv('br0', 'vp0', { tag: 10, externalIds: MARKS })])
  t.is(calls[1]![6], 'name=vp0')
})

test.serial('addPort: exit 0 with an error on stderr, read-back shows ofport -1 -> PlumbError, and the row is removed again', async (t) => {
  const broken = portTables(
    [[uuid('p1'), 'vp0', 10, EMPTY_SET, marksMap, uuid('i1')]],
    [[uuid('b1'), 'br0', uuid('p1')]],
    [[uuid('i1'), 'vp0', -1, 'could not open network device vp0 (No such device)']],
  )
  const fake = await fakeVsctl(t, [
    { code: 0, stderr: "ovs-vsctl: Error detected while setting up 'vp0': could not open network device vp0 (No such device).  See ovs-vswitchd log for details.\novs-vsctl: The default log directory is \"/var/log/openvswitch\".\n" },
    { stdout: broken },
  ])
  const e = await t.throwsAsync(ovs.addPort('br0', 'vp0', { tag: 10, externalIds: MARKS }), { instanceOf: PlumbError })
  t.is(e?.code, 'FAILED')
  t.regex(e?.message ?? '', /^failed to add OVS port "vp0" to bridge "br0": could not open network device vp0 \(No such device\)/)
  t.notRegex(e?.message ?? '', /default log directory/)
  t.regex(e?.hint ?? '', /create the interface "vp0"/)
  t.deepEqual(e?.rolledBack, ['ovs-vsctl --if-exists del-port br0 vp0'])
  const calls = await fake.calls()
  t.deepEqual(calls.at(-1), ['--timeout=5', '--if-exists', 'del-port', 'br0', 'vp0'])
})

test.serial('addPort: a read-back with another tag than asked fails (and a foreign row is not removed)', async (t) => {
  const other = portTables([[uuid('p1'), 'vp0', 20, EMPTY_SET, ['map', []], uuid('i1')]], [[uuid('b1'), 'br0', uuid('p1')]], [[uuid('i1'), 'vp0', 1, EMPTY_SET]])
  const fake = await fakeVsctl(t, [{ code: 0 }, { stdout: other }])
  const e = await t.throwsAsync(ovs.addPort('br0', 'vp0', { tag: 10, externalIds: MARKS }), { instanceOf: PlumbError })
  t.regex(e?.message ?? '', /its tag is 20, not 10/)
  t.false((await fake.calls()).some((c) => c.includes('del-port')))
})

test.serial('createBridge: an existing bridge is left alone, with whether it is plumb\'s', async (t) => {
  const existing = [
    table(['name', 'datapath_type', 'datapath_version', 'external_ids'], [['br0', '', '<unknown>', ['map', []]]]),
    table(['_uuid', 'name', 'ofport', 'error'], [[uuid('i0'), 'br0', 65534, EMPTY_SET]]),
  ].join('\n')
  const fake = await fakeVsctl(t, [{ stdout: existing }])
  t.deepEqual(await ovs.createBridge('br0', { datapathType: 'netdev', mark: { 'plumb-owner': 'plumb' } }), { created: false, owned: false, datapathType: 'system' })
  const calls = await fake.calls()
  t.is(calls.length, 1)
  t.false(calls[0]!.includes('add-br'))
})

test.serial('createBridge: add-br exits 0 but the datapath never opened -> PlumbError and del-br', async (t) => {
  const none = `${table(['name'], [])}\n${table(['name'], [])}\n`
  const half = [
    table(['name', 'datapath_type', 'datapath_version', 'external_ids'], [['pt-nobr', 'system', '', ['map', [['plumb-owner', 'plumb']]]]]),
    table(['_uuid', 'name', 'ofport', 'error'], [[uuid('i0'), 'pt-nobr', EMPTY_SET, EMPTY_SET]]),
  ].join('\n')
  const fake = await fakeVsctl(t, [{ stdout: none }, { code: 0, stderr: "ovs-vsctl: Error detected while setting up 'pt-nobr'.  See ovs-vswitchd log for details.\n" }, { stdout: half }])
  const e = await t.throwsAsync(ovs.createBridge('pt-nobr', { datapathType: 'system', mark: { 'plumb-owner': 'plumb' } }), { instanceOf: PlumbError })
  t.is(e?.code, 'FAILED')
  t.regex(e?.message ?? '', /^failed to create OVS bridge "pt-nobr": ovs-vswitchd could not open its datapath/)
  t.regex(e?.message ?? '', /Error detected while setting up/)
  t.regex(e?.hint ?? '', /netdev/)
  const calls = await fake.calls()
  t.deepEqual(calls[1], ['--timeout=5', 'add-br', 'pt-nobr', '--', 'set', 'bridge', 'pt-nobr', 'datapath_type=system', 'external_ids:plumb-owner=plumb'])
  t.deepEqual(calls.at(-1), ['--timeout=5', '--if-exists', 'del-br', 'pt-nobr'])
})

test.serial('createBridge: success needs the row, the datapath, the local port and the kernel device', async (t) => {
  // "lo" stands in for the bridge's kernel device: the one interface every netns has.
  const none = `${table(['name'], [])}\n${table(['name'], [])}\n`
  const good = [
    table(['name', 'datapath_type', 'datapath_version', 'external_ids'], [['lo', 'netdev', '<built-in>', ['map', []]]]),
    table(['_uuid', 'name', 'ofport', 'error'], [[uuid('i0'), 'lo', 65534, EMPTY_SET]]),
  ].join('\n')
  const fake = await fakeVsctl(t, [{ stdout: none }, { code: 0 }, { stdout: good }])
  t.deepEqual(await ovs.createBridge('lo', { datapathType: 'netdev' }), { created: true, owned: false, datapathType: 'netdev' })
  t.is((await fake.calls()).length, 3)
})

test.serial('error mapping: ovsdb down and a missing binary are UNSUPPORTED (exit 5) with a hint', async (t) => {
  await fakeVsctl(t, [{ code: 1, stderr: 'ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed (No such file or directory)\n' }])
  const down = await t.throwsAsync(ovs.getPort('vp0'), { instanceOf: PlumbError })
  t.is(down?.code, 'UNSUPPORTED')
  t.is(down?.exitCode, 5)
  t.regex(down?.message ?? '', /^failed to read OVS port "vp0": Open vSwitch is not running/)
  t.is(down?.hint, 'start it: /usr/share/openvswitch/scripts/ovs-ctl start')
  const avail = await ovs.ovsAvailable()
  t.false(avail.ok)
  t.regex(avail.reason ?? '', /not running.*ovs-ctl start/)

  process.env.PLUMB_OVS_VSCTL = '/nonexistent/pt-ovs-vsctl'
  const missing = await t.throwsAsync(ovs.isOvsBridge('br0'), { instanceOf: PlumbError })
  t.is(missing?.code, 'UNSUPPORTED')
  t.is(missing?.exitCode, 5)
  t.regex(missing?.message ?? '', /not found/)
  t.regex(missing?.hint ?? '', /openvswitch-switch/)
  t.false((await ovs.ovsAvailable()).ok)
})

test.serial('error mapping: not found, conflict, and a timeout', async (t) => {
  await fakeVsctl(t, [
    { code: 1, stderr: 'ovs-vsctl: no bridge named br9\n' },
    { code: 1, stderr: 'ovs-vsctl: "--may-exist add-port br0 vp0" but vp0 is actually attached to bridge br1\n' },
    { code: 142, stderr: 'ovs-vsctl: timeout after 5 seconds\n' },
  ])
  const nf = await t.throwsAsync(ovs.delPort('vp0'), { instanceOf: PlumbError })
  t.is(nf?.code, 'NOT_FOUND')
  const cf = await t.throwsAsync(ovs.addPort('br0', 'vp0', { externalIds: {} }), { instanceOf: PlumbError })
  t.is(cf?.code, 'CONFLICT')
  t.is(cf?.message, 'failed to add OVS port "vp0": "--may-exist add-port br0 vp0" but vp0 is actually attached to bridge br1')
  const to = await t.throwsAsync(ovs.deleteBridge('br0'), { instanceOf: PlumbError })
  t.is(to?.code, 'UNSUPPORTED')
  t.regex(to?.message ?? '', /timed out after 5 s/)
})

test.serial('delPort with a bridge that is gone is done, not an error', async (t) => {
  const fake = await fakeVsctl(t, [{ code: 1, stderr: 'ovs-vsctl: no bridge named br9\n' }])
  await t.notThrowsAsync(ovs.delPort('vp0', { bridge: 'br9' }))
  t.deepEqual(await fake.calls(), [['--timeout=5', '--if-exists', 'del-port', 'br9', 'vp0']])
})

// lib/ovs over OVSDB's socket against the real ovsdb-server and ovs-vswitchd: ports added and
// read without ovs-vsctl, read back with ovs-vsctl; foreign rows refused; one connection reused.

import test from 'ava'
import { configure } from '../../lib/config.js'
import { PlumbError } from '../../lib/errors.js'
import * as ovs from '../../lib/ovs/index.js'
import { getLink, hasOvs, isRoot, makeOvsBridge, makeVethPair, sh, shQuiet, testIf, uniq, holdGcLock } from '../helpers/index.js'

const withOvs = testIf(isRoot && hasOvs(), 'lib/ovs OVSDB tests need root and a running Open vSwitch (ovs-vsctl show)')

// The ports these tests mark as plumb's name guests that do not exist (pid:4242, /run/netns/x y)
// or lose their device on purpose: exactly what a gc collects. Those tests hold the link tests'
// gc lock, so no gc (of another test file) runs meanwhile.
// Configures another ovsdb socket (process-wide): serial tests run alone, before the concurrent ones.
const withOvsSerial = isRoot && hasOvs() ? test.serial : test.skip

/** ovs-vsctl's own reading, independent of our client and parser. */
const vsctl = (...args: string[]): Promise<string> => sh('ovs-vsctl', ['--timeout=10', ...args])

const MARKS = (guest: string, ifname: string) => ({ 'plumb-owner': 'plumb', 'plumb-guest': guest, 'plumb-ifname': ifname, 'plumb-op': 'ovs-port' })

withOvs('addPort over OVSDB: access and trunk ports, read back with ovs-vsctl get/list; getPort, lookupBridgeAndPort; delPort', async (t) => {
  await holdGcLock(t)
  const br = await makeOvsBridge(t, uniq('b', { dash: false }))
  const acc = uniq('a')
  const trk = uniq('t')
  await makeVethPair(t, acc, `${acc}p`)
  await makeVethPair(t, trk, `${trk}p`)

  const a = await ovs.addPort(br, acc, { tag: 10, externalIds: MARKS('pid:4242', 'eth1') })
  const tr = await ovs.addPort(br, trk, { trunks: [20, 10, 20], externalIds: MARKS('/run/netns/x y', 'eth2') })
  t.is(a.tag, 10)
  t.deepEqual(tr.trunks, [10, 20])

  t.is(await vsctl('port-to-br', acc), br)
  t.is(await vsctl('get', 'port', acc, 'tag'), '10')
  t.is(await vsctl('get', 'port', acc, 'trunks'), '[]')
  t.is(await vsctl('get', 'port', trk, 'tag'), '[]')
  t.is(await vsctl('get', 'port', trk, 'trunks'), '[10, 20]')
  t.is(await vsctl('get', 'port', acc, 'external_ids'), '{plumb-guest="pid:4242", plumb-ifname=eth1, plumb-op=ovs-port, plumb-owner=plumb}')
  t.is(await vsctl('get', 'port', trk, 'external_ids:plumb-guest'), '"/run/netns/x y"')
  // ovs-vswitchd opened both (we waited for its reconfiguration, as ovs-vsctl does).
  const ofport = Number(await vsctl('get', 'interface', acc, 'ofport'))
  t.true(ofport > 0)
  t.true(Number(await vsctl('get', 'interface', trk, 'ofport')) > 0)
  t.is(await vsctl('get', 'interface', acc, 'error'), '[]')
  t.is(a.ofport, ofport)
  t.regex(await vsctl('--columns=name,interfaces', 'list', 'port', acc), new RegExp(`name\\s+: ${acc}`))

  t.like(await ovs.getPort(acc), { name: acc, bridge: br, tag: 10, trunks: [], externalIds: MARKS('pid:4242', 'eth1'), ofport })
  t.like(await ovs.lookupBridgeAndPort(br, acc), { bridgeExists: true, port: { name: acc, bridge: br, tag: 10 } })
  t.deepEqual(await ovs.lookupBridgeAndPort(br, uniq('n')), { bridgeExists: true, datapathType: 'netdev', port: undefined })
  t.deepEqual(await ovs.lookupBridgeAndPort(uniq('n'), acc).then((r) => r.bridgeExists), false)
  t.true(await ovs.isOvsBridge(br))
  t.like(await ovs.getBridge(br), { name: br, datapathType: 'netdev', ofport: 65534 })
  t.deepEqual((await ovs.listPlumbPorts()).filter((p) => p.bridge === br).map((p) => p.name), [acc, trk].sort())

  // Re-adding plumb's own row re-sets it in place (--may-exist): trunk -> access, marks replaced, same row.
  const uuid = await vsctl('get', 'port', trk, '_uuid')
  await ovs.addPort(br, trk, { tag: 30, externalIds: { 'plumb-owner': 'plumb', 'plumb-guest': 'pid:7' } })
  t.is(await vsctl('get', 'port', trk, 'tag'), '30')
  t.is(await vsctl('get', 'port', trk, 'trunks'), '[]')
  t.is(await vsctl('get', 'port', trk, 'external_ids'), '{plumb-guest="pid:7", plumb-ifname=eth2, plumb-op=ovs-port, plumb-owner=plumb}')
  t.is(await vsctl('get', 'port', trk, '_uuid'), uuid)

  await ovs.delPort(acc)
  await ovs.delPort(trk, { bridge: br })
  t.is(await vsctl('list-ports', br), '')
  t.is(await ovs.getPort(acc), undefined)
  await t.notThrowsAsync(ovs.delPort(acc), 'deleting twice is fine')
  // The veths themselves are the caller's: still there.
  t.truthy(await getLink(acc))
})

withOvs("a port row that is not plumb's (same name, no marks) is refused and left exactly as it was", async (t) => {
  const br = await makeOvsBridge(t, uniq('b', { dash: false }))
  const p = uniq('f')
  await makeVethPair(t, p, `${p}p`)
  await vsctl('add-port', br, p, 'tag=5', '--', 'set', 'port', p, 'external_ids:owner=someone')
  const before = await vsctl('--columns=name,tag,trunks,external_ids,interfaces', 'list', 'port', p)
  const e = await t.throwsAsync(ovs.addPort(br, p, { tag: 10, externalIds: MARKS('pid:1', 'eth1') }), { instanceOf: PlumbError })
  t.is(e?.code, 'CONFLICT')
  t.regex(e?.message ?? '', new RegExp(`^failed to add OVS port "${p}": OVS port "${p}" exists and is not plumb's`))
  t.is(await vsctl('--columns=name,tag,trunks,external_ids,interfaces', 'list', 'port', p), before)
  t.is(await vsctl('port-to-br', p), br)
})

withOvs('a plumb port on another bridge is a CONFLICT in ovs-vsctl\'s words; a missing bridge is NOT_FOUND', async (t) => {
  await holdGcLock(t)
  const br1 = await makeOvsBridge(t, uniq('b', { dash: false }))
  const br2 = await makeOvsBridge(t, uniq('c', { dash: false }))
  const p = uniq('a')
  await makeVethPair(t, p, `${p}p`)
  await ovs.addPort(br1, p, { tag: 10, externalIds: MARKS('pid:1', 'eth1') })
  const e = await t.throwsAsync(ovs.addPort(br2, p, { tag: 20, externalIds: MARKS('pid:1', 'eth1') }), { instanceOf: PlumbError })
  t.is(e?.code, 'CONFLICT')
  t.is(e?.message, `failed to add OVS port "${p}": "--may-exist add-port ${br2} ${p}" but ${p} is actually attached to bridge ${br1}`)
  t.is(await vsctl('port-to-br', p), br1)
  t.is(await vsctl('get', 'port', p, 'tag'), '10')

  const nob = uniq('n', { dash: false })
  const q = uniq('q')
  const nf = await t.throwsAsync(ovs.addPort(nob, q, { externalIds: MARKS('pid:1', 'eth1') }), { instanceOf: PlumbError })
  t.is(nf?.code, 'NOT_FOUND')
  t.is(nf?.message, `failed to add OVS port "${q}": no bridge named ${nob}`)
  t.is((await shQuiet('ovs-vsctl', ['--timeout=10', 'get', 'port', q, 'name'])).exitCode, 1, 'no row was made')
})

withOvs('a missing host device: the same FAILED error as before, and no row left behind', async (t) => {
  await holdGcLock(t)
  const br = await makeOvsBridge(t, uniq('b', { dash: false }))
  const ghost = uniq('g')
  const e = await t.throwsAsync(ovs.addPort(br, ghost, { tag: 10, externalIds: MARKS('pid:1', 'eth1') }), { instanceOf: PlumbError })
  t.is(e?.code, 'FAILED')
  t.regex(e?.message ?? '', new RegExp(`^failed to add OVS port "${ghost}" to bridge "${br}": could not open network device ${ghost} \\(No such device\\); the port row was removed again$`))
  t.regex(e?.hint ?? '', new RegExp(`create the interface "${ghost}"`))
  t.deepEqual(e?.rolledBack, [`ovs-vsctl --if-exists del-port ${br} ${ghost}`])
  t.is(await vsctl('list-ports', br), '')
  t.is((await shQuiet('ovs-vsctl', ['--timeout=10', 'get', 'interface', ghost, 'name'])).exitCode, 1, 'the Interface row went too')
})

withOvs('two ops, one socket: the connection is opened once and reused', async (t) => {
  await holdGcLock(t)
  const br = await makeOvsBridge(t, uniq('b', { dash: false }))
  const p = uniq('r')
  await makeVethPair(t, p, `${p}p`)
  await ovs.isOvsBridge(br) // opens it if no earlier test in this process did
  const opened = ovs.ovsdbConnectionsOpened()
  await ovs.addPort(br, p, { tag: 11, externalIds: MARKS('pid:1', 'eth1') })
  await ovs.lookupBridgeAndPort(br, p)
  await ovs.getPort(p)
  await ovs.listPlumbPorts()
  t.is(ovs.ovsdbConnectionsOpened(), opened, 'no new connection for four more calls')
  // The kernel's view: this process has exactly one unix socket whose peer is ovsdb-server's db.sock end.
  const cols = (await sh('ss', ['-xpn'])).split('\n').map((l) => l.trim().split(/\s+/))
  const serverEnds = new Set(cols.filter((c) => c[4]?.endsWith('/db.sock')).map((c) => c[5]))
  const mine = cols.filter((c) => c.some((x) => x.includes(`pid=${process.pid},`)) && serverEnds.has(c[7]))
  t.is(mine.length, 1, 'one connection from this process to ovsdb-server')
  t.truthy(await getLink(p))
})

withOvsSerial('OVS not running (configured at a path nothing listens on): UNSUPPORTED with the start hint', async (t) => {
  const before = configure({ ovsdbSocket: `/run/${uniq('nosock')}.sock` })
  t.teardown(() => void configure(before))
  for (const call of [() => ovs.isOvsBridge('ptbr0'), () => ovs.getPort('ptp0'), () => ovs.addPort('ptbr0', 'ptp0', { externalIds: {} })]) {
    const e = await t.throwsAsync(call(), { instanceOf: PlumbError })
    t.is(e?.code, 'UNSUPPORTED')
    t.is(e?.exitCode, 5)
    t.regex(e?.message ?? '', /: Open vSwitch is not running \(unix:\/run\/pt-.*: database connection failed \(No such file or directory\)\)$/)
    t.is(e?.hint, ovs.START_HINT)
  }
})

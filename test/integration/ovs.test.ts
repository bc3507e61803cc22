// lib/ovs against the real Open vSwitch (userspace datapath here): bridges, access and trunk
// ports on real veths, plumb's marks, stale rows, cleanup, and VLAN isolation by ping.

import type { ExecutionContext } from 'ava'
import { PlumbError } from '../../lib/errors.js'
import * as ovs from '../../lib/ovs/index.js'
import { getLink, hasOvs, isRoot, makeNetns, makeVethPair, ping, sh, shQuiet, testIf, uniq, waitFor, holdGcLock } from '../helpers/index.js'

const withOvs = testIf(isRoot && hasOvs(), 'lib/ovs integration tests need root and a running Open vSwitch (ovs-vsctl show)')

// The ports these tests mark as plumb's name guests that do not exist (pid:4242, /run/netns/x y)
// or lose their device on purpose: exactly what a gc collects. Those tests hold the link tests'
// gc lock, so no gc (of another test file) runs meanwhile.
const withoutOvsModule = testIf(isRoot && hasOvs() && !ovs.kernelHasOvsDatapath(), 'createBridge with the system datapath: this kernel has the openvswitch datapath (or no root/OVS), so there is nothing to refuse')

/** ovs-vsctl read independently of lib/ovs's parser (plain `get` output). */
const vsctl = (...args: string[]): Promise<string> => sh('ovs-vsctl', ['--timeout=10', ...args])

const MARKS = (guest: string, ifname: string) => ({ 'plumb-owner': 'plumb', 'plumb-guest': guest, 'plumb-ifname': ifname, 'plumb-op': 'ovs-port' })

/** A plumb-created OVS bridge (through the code under test), always deleted in teardown. */
async function plumbBridge(t: ExecutionContext): Promise<string> {
  const br = uniq('b')
  t.teardown(async () => {
    await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', br])
  })
  await ovs.createBridge(br, { mark: { 'plumb-owner': 'plumb', 'plumb-op': 'bridge' } })
  return br
}

withOvs('createBridge: auto datapath, marks on the Bridge row, the kernel device; idempotent; deleteBridge', async (t) => {
  t.true((await ovs.ovsAvailable()).ok)
  const br = uniq('b')
  t.teardown(async () => {
    await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', br])
  })
  t.false(await ovs.isOvsBridge(br))
  const res = await ovs.createBridge(br, { mark: { 'plumb-owner': 'plumb', 'plumb-op': 'bridge' } })
  const want = ovs.kernelHasOvsDatapath() ? 'system' : 'netdev'
  t.deepEqual(res, { created: true, owned: true, datapathType: want })
  t.true(await ovs.isOvsBridge(br))
  t.is(await vsctl('get', 'bridge', br, 'datapath_type'), want)
  t.is(await vsctl('get', 'bridge', br, 'external_ids:plumb-owner'), 'plumb')
  t.is(await vsctl('get', 'interface', br, 'ofport'), '65534')
  // The kernel side: a tap with the userspace datapath, an openvswitch internal port with the kernel's.
  const link = await getLink(br)
  t.truthy(link, 'the bridge device exists in the kernel')
  t.is(link?.linkinfo?.info_kind, want === 'netdev' ? 'tun' : 'openvswitch')

  t.deepEqual(await ovs.createBridge(br), { created: false, owned: true, datapathType: want }, 'a second create is a no-op')
  await ovs.deleteBridge(br)
  t.is((await shQuiet('ovs-vsctl', ['--timeout=10', 'br-exists', br])).exitCode, 2)
  t.is(await getLink(br), undefined)
  await t.notThrowsAsync(ovs.deleteBridge(br), 'deleting twice is fine')
})

withOvs('createBridge leaves a foreign bridge exactly as it was', async (t) => {
  const br = uniq('b')
  t.teardown(async () => {
    await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', br])
  })
  await vsctl('add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev')
  t.deepEqual(await ovs.createBridge(br, { datapathType: 'netdev', mark: { 'plumb-owner': 'plumb' } }), { created: false, owned: false, datapathType: 'netdev' })
  t.is(await vsctl('get', 'bridge', br, 'external_ids'), '{}')
})

withoutOvsModule('createBridge with the system datapath where the kernel lacks it: PlumbError, nothing left', async (t) => {
  const br = uniq('b')
  t.teardown(async () => {
    await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', br])
  })
  const e = await t.throwsAsync(ovs.createBridge(br, { datapathType: 'system' }), { instanceOf: PlumbError })
  t.is(e?.code, 'FAILED')
  t.regex(e?.message ?? '', /could not open its datapath/)
  t.is((await shQuiet('ovs-vsctl', ['--timeout=10', 'br-exists', br])).exitCode, 2, 'the half-made bridge was deleted')
})

withOvs('addPort of a device that does not exist: exit 0 from ovs-vsctl, but a PlumbError and no row left', async (t) => {
  await holdGcLock(t)
  const br = await plumbBridge(t)
  const ghost = uniq('g')
  const e = await t.throwsAsync(ovs.addPort(br, ghost, { tag: 10, externalIds: MARKS('pid:1', 'eth1') }), { instanceOf: PlumbError })
  t.is(e?.code, 'FAILED')
  t.regex(e?.message ?? '', new RegExp(`failed to add OVS port "${ghost}" to bridge "${br}": could not open network device`))
  t.is(await vsctl('list-ports', br), '')
})

withOvs('addPort of a port already on another bridge is a CONFLICT and changes nothing', async (t) => {
  await holdGcLock(t)
  const br1 = await plumbBridge(t)
  const br2 = await plumbBridge(t)
  const p = uniq('a')
  await makeVethPair(t, p, `${p}p`)
  await ovs.addPort(br1, p, { tag: 10, externalIds: MARKS('pid:1', 'eth1') })
  const e = await t.throwsAsync(ovs.addPort(br2, p, { tag: 20, externalIds: MARKS('pid:1', 'eth1') }), { instanceOf: PlumbError })
  t.is(e?.code, 'CONFLICT')
  t.is(await vsctl('port-to-br', p), br1)
  t.is(await vsctl('get', 'port', p, 'tag'), '10')
})

withOvs('a Port row outlives its interface: listPlumbPorts still finds it (what gc removes)', async (t) => {
  await holdGcLock(t)
  const br = await plumbBridge(t)
  const p = uniq('s')
  await makeVethPair(t, p, `${p}p`)
  await ovs.addPort(br, p, { tag: 10, externalIds: MARKS('pid:1', 'eth1') })
  await sh('ip', ['link', 'del', p])
  t.is(await getLink(p), undefined, 'the device is gone from the kernel')
  // With the userspace datapath the row keeps its ofport; only link_state drops, asynchronously.
  const info = await waitFor(
    async () => {
      const i = await ovs.getPort(p)
      return i?.linkState === 'down' ? i : undefined
    },
    { timeout: 2000, what: `link_state down on ${p}` },
  )
  t.is(info?.linkState, 'down')
  t.is(await vsctl('get', 'interface', p, 'link_state'), 'down')
  t.is(await vsctl('port-to-br', p), br, 'the Port row is still there')
  t.true((await ovs.listPlumbPorts()).some((x) => x.name === p && x.bridge === br && x.externalIds['plumb-guest'] === 'pid:1'))
  await ovs.delPort(p)
  t.is(await vsctl('list-ports', br), '')
})

withOvs('VLAN isolation: two netns on tag 10 ping each other, a third on tag 20 (same subnet) does not', async (t) => {
  await holdGcLock(t)
  const br = await plumbBridge(t)
  const ends: Array<{ ns: string; host: string; addr: string; tag: number }> = []
  for (const [i, tag] of [10, 10, 20].entries()) {
    const ns = await makeNetns(t, { loUp: true })
    const host = uniq(`v${i}`)
    await makeVethPair(t, host, 'eth1', ns)
    const addr = `198.18.77.${i + 1}`
    await sh('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth1'])
    await ovs.addPort(br, host, { tag, externalIds: MARKS(`netns:${ns}`, 'eth1') })
    ends.push({ ns, host, addr, tag })
  }
  const [a, b, c] = ends as [(typeof ends)[0], (typeof ends)[0], (typeof ends)[0]]
  t.true(await ping(a.ns, b.addr, { count: 2, timeout: 2 }), 'same VLAN: reachable')
  t.true(await ping(b.ns, a.addr, { count: 1, timeout: 2 }), 'same VLAN, other way: reachable')
  t.false(await ping(a.ns, c.addr, { count: 1, timeout: 1 }), 'tag 10 -> tag 20: isolated')
  t.false(await ping(c.ns, b.addr, { count: 1, timeout: 1 }), 'tag 20 -> tag 10: isolated')
  // And the isolation is the tag's doing: move the third to tag 10 and it answers.
  await ovs.addPort(br, c.host, { tag: 10, externalIds: MARKS(`netns:${c.ns}`, 'eth1') })
  t.true(await ping(a.ns, c.addr, { count: 2, timeout: 2 }), 'after re-tagging to 10: reachable')
})

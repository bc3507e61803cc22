// ovs-port and attach-veth onto an Open vSwitch bridge on `ip netns` guests: ports read back
// with ovs-vsctl (bridge, tag, trunks, external_ids marks), TCP, UDP and ping within a VLAN,
// isolation between VLANs.

import { assertTraffic, getLink, hasOvs, isRoot, ping, sh, testIf } from '../helpers/index.js'
import { fixture, guestLinks, plumb, views } from './ops-fixture.js'
import { bare, extraGuest, ovsBridgeName, ovsBridgesOf, ovsPortsOf, worldView } from './links-fixture.js'

const withOvs = testIf(isRoot && hasOvs(), 'links-ovs: needs root and a running Open vSwitch (scripts/testbed.sh up)')

const vsctl = (...args: string[]): Promise<string> => sh('ovs-vsctl', ['--timeout=10', ...args])

withOvs('ovs-port --create-bridge: a plumb-marked bridge on the userspace datapath; the port carries tag and plumb marks; both ends up; detach removes the row', async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  const r = await plumb('ovs-port', f.guest, br, f.v4(10), '--tag', '10', '--create-bridge', '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.true(r.json.changed)

  t.deepEqual(await ovsBridgesOf(f.id), [br])
  t.is(await vsctl('get', 'bridge', br, 'datapath_type'), 'netdev')
  t.is(await vsctl('get', 'bridge', br, 'external_ids:plumb-owner'), 'plumb')

  const [port, ...more] = await ovsPortsOf(f.id)
  t.is(more.length, 0)
  const hostIf = r.json.interfaces.find((i: { netns: string }) => i.netns === 'host').name as string
  t.like(port, { name: hostIf, bridge: br, tag: 10, trunks: [] })
  t.like(port?.externalIds, { 'plumb-owner': 'plumb', 'plumb-guest': f.guest, 'plumb-ifname': 'eth1', 'plumb-op': 'ovs-port' })
  // OVS really opened it (not just a row): an OpenFlow port number, no error
  t.true(Number(await vsctl('get', 'interface', hostIf, 'ofport')) > 0)
  t.is(await vsctl('get', 'interface', hostIf, 'error'), '[]')

  const host = await getLink(hostIf)
  t.true((host?.flags as string[]).includes('UP'))
  t.regex(String(host?.ifalias), /^plumb:1 role=host op=ovs-port /)
  const eth1 = (await guestLinks(f.ns)).get('eth1')
  t.true((eth1?.flags as string[]).includes('UP'))
  t.is(eth1?.linkinfo?.info_kind, 'veth')

  const again = await plumb('ovs-port', f.guest, br, f.v4(10), '--tag', '10')
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already/)
  const retag = await plumb('ovs-port', f.guest, br, f.v4(10), '--tag', '20')
  t.is(retag.exitCode, 4, 'a different tag on the same port is a conflict')
  t.is((await ovsPortsOf(f.id))[0]?.tag, 10)

  const ls = await plumb('ls', f.guest, '--json')
  t.like(ls.json.guests[0].interfaces[0], { name: 'eth1', op: 'ovs-port', peer: hostIf, bridge: br })

  const d = await plumb('detach', f.guest, 'eth1')
  t.is(d.exitCode, 0, d.stderr)
  t.deepEqual(await ovsPortsOf(f.id), [])
  t.is(await getLink(hostIf), undefined)
  t.deepEqual([...(await guestLinks(f.ns)).keys()], ['lo'])
  // the bridge plumb created went with its last port
  t.deepEqual(await ovsBridgesOf(f.id), [])
})

withOvs('detach leaves an OVS bridge plumb did not create, even when its last port goes', async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  await vsctl('add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev')
  const r = await plumb('ovs-port', f.guest, br, f.v4(10))
  t.is(r.exitCode, 0, r.stderr)
  const d = await plumb('detach', f.guest, '--all')
  t.is(d.exitCode, 0, d.stderr)
  t.deepEqual(await ovsPortsOf(f.id), [])
  t.deepEqual(await ovsBridgesOf(f.id), [br])
})

withOvs('ovs-port --trunks makes a trunk port; --mtu, --mac and -l are honoured', async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  const hostIf = `${f.id}h`
  const r = await plumb('ovs-port', f.guest, br, '--trunks', '10,20-22', '--create-bridge', '-l', hostIf, '-i', 'trk0', '--mtu', '1400', '--mac', '02:00:5e:10:20:30')
  t.is(r.exitCode, 0, r.stderr)
  const [port] = await ovsPortsOf(f.id)
  t.like(port, { name: hostIf, bridge: br, tag: undefined, trunks: [10, 20, 21, 22] })
  const trk = (await guestLinks(f.ns)).get('trk0')
  t.is(trk?.mtu, 1400)
  t.is(trk?.address, '02:00:5e:10:20:30')
  t.is((await getLink(hostIf))?.mtu, 1400)
})

withOvs('four guests, two on tag 10 and two on tag 20 (ovs-port and attach-veth --vlan): same-tag pairs carry TCP, UDP and ping, cross-tag pairs do not ping', async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  // an OVS bridge that exists already (not plumb's): attach-veth detects it
  await vsctl('add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev')
  const g = [{ ns: f.ns, guest: f.guest }, await extraGuest(t, f, 'b'), await extraGuest(t, f, 'c'), await extraGuest(t, f, 'd')]
  const tags = [10, 10, 20, 20]
  const rs = [
    await plumb('ovs-port', g[0]!.guest, br, f.v4(10), '--tag', '10'),
    await plumb('attach-veth', g[1]!.guest, br, f.v4(11), '--vlan', '10', '--json'),
    await plumb('ovs-port', g[2]!.guest, br, f.v4(12), '--tag', '20'),
    await plumb('attach-veth', g[3]!.guest, br, f.v4(13), '--vlan', '20'),
  ]
  for (const r of rs) t.is(r.exitCode, 0, r.stderr)
  t.is(rs[1]!.json.interfaces.find((i: { netns: string }) => i.netns === 'host').bridge, br)

  const ports = await ovsPortsOf(f.id)
  t.is(ports.length, 4)
  for (const [i, x] of g.entries()) {
    const p = ports.find((q) => q.externalIds['plumb-guest'] === x.guest)
    t.is(p?.tag, tags[i], `${x.guest} is an access port on VLAN ${tags[i]}`)
    t.is(p?.bridge, br)
    t.is(p?.externalIds['plumb-owner'], 'plumb')
  }
  t.is(await getLink(br).then((l) => l?.ifalias), undefined, 'a bridge plumb did not make is not marked')

  const addr = (i: number): string => bare(f.v4(10 + i))
  // TCP and UDP too: the userspace datapath carried ping while it dropped them (checksum offload)
  await assertTraffic(t, g[0]!.ns, g[1]!.ns, addr(1), 'tag 10: ovs-port -> attach-veth --vlan')
  await assertTraffic(t, g[1]!.ns, g[0]!.ns, addr(0), 'tag 10: attach-veth --vlan -> ovs-port')
  await assertTraffic(t, g[2]!.ns, g[3]!.ns, addr(3), 'tag 20: ovs-port -> attach-veth --vlan')
  const cross = await Promise.all([
    ping(g[0]!.ns, addr(2), { count: 1, timeout: 1 }),
    ping(g[0]!.ns, addr(3), { count: 1, timeout: 1 }),
    ping(g[1]!.ns, addr(2), { count: 1, timeout: 1 }),
    ping(g[3]!.ns, addr(1), { count: 1, timeout: 1 }),
  ])
  t.deepEqual(cross, [false, false, false, false], 'no cross-tag pair reaches the other')

  for (const x of g) t.is((await plumb('detach', x.guest, '--all')).exitCode, 0)
  t.deepEqual(await ovsPortsOf(f.id), [])
  t.deepEqual(await ovsBridgesOf(f.id), [br], 'a bridge plumb did not make stays')
})

withOvs('untagged ports (a trunk of every VLAN) carry TCP, UDP and ping, IPv4 and IPv6, both ways', async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  const b = await extraGuest(t, f, 'b')
  const ra = await plumb('ovs-port', f.guest, br, f.v4(10), f.v6(10), '--create-bridge')
  t.is(ra.exitCode, 0, ra.stderr)
  const rb = await plumb('ovs-port', b.guest, br, f.v4(11), f.v6(11))
  t.is(rb.exitCode, 0, rb.stderr)
  t.deepEqual((await ovsPortsOf(f.id)).map((p) => [p.tag, p.trunks]), [[undefined, []], [undefined, []]])
  await assertTraffic(t, f.ns, b.ns, bare(f.v4(11)), 'IPv4 a -> b')
  await assertTraffic(t, b.ns, f.ns, bare(f.v4(10)), 'IPv4 b -> a')
  await assertTraffic(t, f.ns, b.ns, bare(f.v6(11)), 'IPv6 a -> b')
  await assertTraffic(t, b.ns, f.ns, bare(f.v6(10)), 'IPv6 b -> a')
})

withOvs("refuses to take over an OVS port that is not plumb's (exit 4, the row unchanged)", async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  await vsctl('add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev')
  const foreign = `${f.id}z`
  // someone else's port row (its device need not exist for the row to be there)
  await vsctl('add-port', br, foreign, '--', 'set', 'port', foreign, 'tag=99', 'external_ids:owner=someone')
  const before = await worldView(f.id, [f.ns], { ovs: true })
  const r = await plumb('ovs-port', f.guest, br, f.v4(10), '-l', foreign, '--tag', '10')
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, /not plumb's/)
  t.deepEqual(await worldView(f.id, [f.ns], { ovs: true }), before)
  t.is(await vsctl('get', 'port', foreign, 'tag'), '99')
})

withOvs('ovs-port --dry-run plans the bridge, the veth and the port; nothing changes', async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  const before = await worldView(f.id, [f.ns], { ovs: true })
  const r = await plumb('ovs-port', f.guest, br, f.v4(10), '--tag', '10', '--create-bridge', '--dry-run')
  t.is(r.exitCode, 0, r.stderr)
  t.regex(r.stdout, new RegExp(`^ovs-vsctl .*add-br ${br}.*datapath_type=netdev`, 'm'))
  t.regex(r.stdout, /^ip link add \S+ mtu 1500 numtxqueues 1 numrxqueues 1 up type veth peer name eth1 netns \S+ mtu 1500 numtxqueues 1 numrxqueues 1$/m)
  // the userspace datapath needs the guest end's TX checksums done in software (see ovs-port.ts)
  t.regex(r.stdout, new RegExp(`^ip netns exec ${f.ns} ethtool -K eth1 tx off$`, 'm'))
  t.regex(r.stdout, new RegExp(`^ovs-vsctl --may-exist add-port ${br} \\S+ .*tag=10.*plumb-owner=plumb`, 'm'))
  t.deepEqual(await worldView(f.id, [f.ns], { ovs: true }), before)
  t.deepEqual(await views(f), { host: (before as { host: unknown }).host, guest: (before as { guests: unknown[] }).guests[0] })
})

// macvlan and vlan on `ip netns` guests through the real CLI: children born in the guest on a
// veth end standing in for a NIC (never eth0), read back with ip -j, with TCP, UDP and ping.

import { execFileSync } from 'node:child_process'
import { assertTraffic, getLink, hasOvs, isRoot, ping, sh, shQuiet, testIf } from '../helpers/index.js'
import { addrsOf, fixture, guestLinks, plumb, views } from './ops-fixture.js'
import { bare, extraGuest, nicWithFarEnd, ovsBridgeName, ovsPortsOf, worldView } from './links-fixture.js'

const asRoot = testIf(isRoot, 'links-macvlan-vlan: needs root (ip netns, links)')
const withOvs = testIf(isRoot && hasOvs(), 'links-macvlan-vlan: needs root and a running Open vSwitch')

/** Does this kernel create 802.1q links? (Checked in a throwaway netns: nothing of the host's is touched.) */
function kernelHasVlan(): boolean {
  if (!isRoot) return false
  const ns = `pt-vlprobe${process.pid % 10000}`
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'ignore' })
    execFileSync('ip', ['-n', ns, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb'], { stdio: 'ignore' })
    execFileSync('ip', ['-n', ns, 'link', 'add', 'link', 'pa', 'name', 'pv', 'type', 'vlan', 'id', '5'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  } finally {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
    } catch {
      /* not made */
    }
  }
}
const HAS_8021Q = kernelHasVlan()

const macvlanMode = (l: { linkinfo?: { info_kind?: string; info_data?: { mode?: string } } } | undefined): string | undefined =>
  l?.linkinfo?.info_kind === 'macvlan' ? l.linkinfo.info_data?.mode : undefined

asRoot('macvlan bridge mode: two guests on one parent carry TCP, UDP and ping to each other and the far end; ls shows the parent; re-run is "already"; detach leaves the parent alone', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'c')
  const { nic, far } = await nicWithFarEnd(t, f, f.v4(1))

  const ra = await plumb('macvlan', f.guest, nic, f.v4(10), '--json')
  t.is(ra.exitCode, 0, ra.stderr)
  const rb = await plumb('macvlan', b.guest, nic, f.v4(11), '-i', 'lan0', '--mac', 'seed:b', '--mtu', '1400')
  t.is(rb.exitCode, 0, rb.stderr)

  // read back: children of the parent, in the guests, in bridge mode, with the right options
  const parent = await getLink(nic)
  const ea = (await guestLinks(f.ns)).get('eth1')
  const eb = (await guestLinks(b.ns)).get('lan0')
  t.is(macvlanMode(ea), 'bridge')
  t.is(macvlanMode(eb), 'bridge')
  t.is(ea?.link_index, parent?.ifindex, 'eth1 is a child of the NIC')
  t.is(eb?.link_index, parent?.ifindex)
  t.true((ea?.flags as string[]).includes('UP'))
  t.is(eb?.mtu, 1400)
  t.regex(String(eb?.address), /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
  t.is(Number.parseInt(String(eb?.address).slice(0, 2), 16) & 0b11, 0b10, 'seed: MAC is locally administered unicast')
  t.deepEqual(await addrsOf('eth1', f.ns), [f.v4(10)])
  t.regex(String(ea?.ifalias), /^plumb:1 role=guest op=macvlan .*parent=/)
  t.like(ra.json, { op: 'macvlan', changed: true })
  t.like(ra.json.interfaces[0], { name: 'eth1', kind: 'macvlan', peer: nic, netns: f.guest })
  t.is(ra.json.interfaces[0].mac, ea?.address)

  await assertTraffic(t, f.ns, b.ns, bare(f.v4(11)), 'a -> b (bridge mode)')
  await assertTraffic(t, b.ns, f.ns, bare(f.v4(10)), 'b -> a')
  await assertTraffic(t, f.ns, far, bare(f.v4(1)), 'a -> the far end of the parent')
  await assertTraffic(t, far, b.ns, bare(f.v4(11)), 'the far end -> b')

  const again = await plumb('macvlan', f.guest, nic, f.v4(10))
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already/)
  t.deepEqual([...(await guestLinks(f.ns)).keys()].sort(), ['eth1', 'lo'], 'no second child')

  const ls = await plumb('ls', f.guest, '--json')
  t.is(ls.exitCode, 0, ls.stderr)
  t.like(ls.json.guests[0].interfaces[0], { name: 'eth1', op: 'macvlan', kind: 'macvlan', parent: nic, addresses: [f.v4(10)] })
  const human = await plumb('ls', b.guest)
  t.regex(human.stdout, new RegExp(`lan0 +macvlan .*parent ${nic}`))

  for (const [g, ifname] of [[f.guest, 'eth1'], [b.guest, 'lan0']] as const) {
    const d = await plumb('detach', g, ifname)
    t.is(d.exitCode, 0, d.stderr)
  }
  t.deepEqual([...(await guestLinks(f.ns)).keys()], ['lo'])
  t.deepEqual([...(await guestLinks(b.ns)).keys()], ['lo'])
  t.truthy(await getLink(nic), 'the parent stays')
  const d2 = await plumb('detach', f.guest, 'eth1')
  t.is(d2.exitCode, 0)
  t.regex(d2.stdout, /already detached/)
})

asRoot('macvlan private mode: the guests reach the far end but not each other', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'c')
  const { nic } = await nicWithFarEnd(t, f, f.v4(1))
  for (const [g, h] of [[f.guest, 10], [b.guest, 11]] as const) {
    const r = await plumb('macvlan', g, nic, f.v4(h), '--mode', 'private')
    t.is(r.exitCode, 0, r.stderr)
  }
  t.is(macvlanMode((await guestLinks(f.ns)).get('eth1')), 'private')
  t.true(await ping(f.ns, bare(f.v4(1))), 'a reaches the far end')
  t.true(await ping(b.ns, bare(f.v4(1))), 'b reaches the far end')
  t.false(await ping(f.ns, bare(f.v4(11)), { count: 1, timeout: 1 }), 'a does not reach b')
  t.false(await ping(b.ns, bare(f.v4(10)), { count: 1, timeout: 1 }), 'b does not reach a')

  // the same child asked again in another mode is a conflict, not a duplicate of its address
  const before = await worldView(f.id, [f.ns, b.ns])
  const other = await plumb('macvlan', f.guest, nic, f.v4(10), '--mode', 'bridge')
  t.is(other.exitCode, 4, other.stderr)
  t.regex(other.stderr, /mode private/)
  t.deepEqual(await worldView(f.id, [f.ns, b.ns]), before)
})

asRoot('macvlan vepa, source and passthru modes; passthru takes the parent alone (exit 4, nothing changed)', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'c')
  const { nic } = await nicWithFarEnd(t, f)
  for (const mode of ['vepa', 'source']) {
    const r = await plumb('macvlan', f.guest, nic, '-i', `m${mode}`, '--mode', mode)
    t.is(r.exitCode, 0, r.stderr)
    t.is(macvlanMode((await guestLinks(f.ns)).get(`m${mode}`)), mode)
  }
  const before = await worldView(f.id, [f.ns, b.ns])
  const pt = await plumb('macvlan', b.guest, nic, '--mode', 'passthru')
  t.is(pt.exitCode, 4, pt.stderr)
  t.regex(pt.stderr, /passthru/)
  t.regex(pt.stderr, new RegExp(nic))
  t.deepEqual(await worldView(f.id, [f.ns, b.ns]), before)

  const d = await plumb('detach', f.guest, '--all')
  t.is(d.exitCode, 0, d.stderr)
  const ok = await plumb('macvlan', b.guest, nic, f.v4(12), '--mode', 'passthru')
  t.is(ok.exitCode, 0, ok.stderr)
  t.is(macvlanMode((await guestLinks(b.ns)).get('eth1')), 'passthru')
  const second = await plumb('macvlan', f.guest, nic)
  t.is(second.exitCode, 4, second.stderr)
  t.regex(second.stderr, /passthru/)
  t.deepEqual([...(await guestLinks(f.ns)).keys()], ['lo'], 'the refused child left nothing behind')
})

asRoot('macvlan --dry-run prints the ip plan and changes nothing; @GATEWAY sets the default route', async (t) => {
  const f = await fixture(t)
  const { nic } = await nicWithFarEnd(t, f, f.v4(1))
  const before = await views(f)
  const dry = await plumb('macvlan', f.guest, nic, `${f.v4(10)}@${f.gw4}`, '--mode', 'private', '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.regex(dry.stdout, new RegExp(`ip link add eth1 link ${nic} netns ${f.ns} mtu 1500 type macvlan mode private`))
  t.regex(dry.stdout, new RegExp(`ip -n ${f.ns} addr add ${f.v4(10).replace(/\./g, '\\.')} dev eth1`))
  t.regex(dry.stdout, new RegExp(`route add default via ${f.gw4.replace(/\./g, '\\.')} dev eth1`))
  t.deepEqual(await views(f), before)

  const r = await plumb('macvlan', f.guest, nic, `${f.v4(10)}@${f.gw4}`)
  t.is(r.exitCode, 0, r.stderr)
  const routes = JSON.parse(await sh('ip', ['-n', f.ns, '-j', 'route', 'show', 'default'])) as Array<{ gateway: string; dev: string }>
  t.deepEqual(routes.map((x) => [x.gateway, x.dev]), [[f.gw4, 'eth1']])
  t.true(await ping(f.ns, bare(f.v4(1))))
})

withOvs('vlan on an OVS bridge: an access port tagged VID; same VID carries TCP, UDP and ping, another VID does not ping; ls and detach', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'c')
  const c = await extraGuest(t, f, 'd')
  const br = ovsBridgeName(t, f)
  await sh('ovs-vsctl', ['--timeout=10', 'add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev'])
  const r10a = await plumb('vlan', f.guest, br, '10', f.v4(10), '--json')
  t.is(r10a.exitCode, 0, r10a.stderr)
  t.is(r10a.json.op, 'vlan')
  t.is((await plumb('vlan', b.guest, br, '10', f.v4(11))).exitCode, 0)
  t.is((await plumb('vlan', c.guest, br, '20', f.v4(12))).exitCode, 0)

  const ports = await ovsPortsOf(f.id)
  t.is(ports.length, 3)
  const byGuest = new Map(ports.map((p) => [p.externalIds['plumb-guest'], p]))
  t.is(byGuest.get(f.guest)?.tag, 10)
  t.is(byGuest.get(b.guest)?.tag, 10)
  t.is(byGuest.get(c.guest)?.tag, 20)
  for (const p of ports) t.is(p.bridge, br)

  // TCP and UDP too: the userspace datapath carried ping while it dropped them
  await assertTraffic(t, f.ns, b.ns, bare(f.v4(11)), 'VLAN 10 -> VLAN 10')
  await assertTraffic(t, b.ns, f.ns, bare(f.v4(10)), 'VLAN 10 <- VLAN 10')
  t.false(await ping(f.ns, bare(f.v4(12)), { count: 1, timeout: 1 }), 'VLAN 10 does not reach VLAN 20')
  t.false(await ping(c.ns, bare(f.v4(11)), { count: 1, timeout: 1 }), 'VLAN 20 does not reach VLAN 10')

  const again = await plumb('vlan', f.guest, br, '10', f.v4(10))
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already/)
  const otherVid = await plumb('vlan', f.guest, br, '30', f.v4(10), '-i', 'eth1')
  t.is(otherVid.exitCode, 4, otherVid.stderr)

  const ls = await plumb('ls', f.guest, '--json')
  t.like(ls.json.guests[0].interfaces[0], { name: 'eth1', op: 'ovs-port', bridge: br })

  const d = await plumb('detach', f.guest, 'eth1')
  t.is(d.exitCode, 0, d.stderr)
  t.deepEqual((await ovsPortsOf(f.id)).map((p) => p.externalIds['plumb-guest']).sort(), [b.guest, c.guest].sort(), "the detached guest's port row is gone")
  t.deepEqual([...(await guestLinks(f.ns)).keys()], ['lo'])
})

testIf(isRoot && !HAS_8021Q, 'links-macvlan-vlan: the kernel has 8021q, so the missing-feature path is not reachable')(
  'vlan on a NIC without 8021q: exit 5 naming the missing feature and the OVS alternative; nothing changed; the dry-run plan is the 802.1q child',
  async (t) => {
    const f = await fixture(t)
    const { nic } = await nicWithFarEnd(t, f)
    const before = await views(f)
    const r = await plumb('vlan', f.guest, nic, '10', f.v4(10))
    t.is(r.exitCode, 5, r.stderr)
    t.regex(r.stderr, /802\.1q/i)
    t.regex(r.stderr, /8021q/)
    t.regex(r.stderr, /hint: .*(ovs|Open vSwitch)/i)
    t.deepEqual(await views(f), before)

    const j = await plumb('vlan', f.guest, nic, '10', '--json')
    t.is(j.exitCode, 5)
    t.is(j.json.error.code, 'UNSUPPORTED')

    const dry = await plumb('vlan', f.guest, nic, '10', f.v4(10), '-i', 'v10', '--dry-run')
    t.is(dry.exitCode, 0, dry.stderr)
    t.regex(dry.stdout, new RegExp(`^ip link add v10 link ${nic} netns ${f.ns} mtu 1500 type vlan id 10$`, 'm'))
    t.regex(dry.stdout, /addr add .* dev v10/)
    t.deepEqual(await views(f), before)
  },
)

testIf(isRoot && HAS_8021Q, 'links-macvlan-vlan: the kernel has no 8021q (the exit-5 test covers it)')('vlan on a NIC with 8021q: a VLAN child in the guest', async (t) => {
  const f = await fixture(t)
  const { nic } = await nicWithFarEnd(t, f)
  const r = await plumb('vlan', f.guest, nic, '10', f.v4(10))
  t.is(r.exitCode, 0, r.stderr)
  const l = (await guestLinks(f.ns)).get('eth1')
  t.is(l?.linkinfo?.info_kind, 'vlan')
  t.is(l?.linkinfo?.info_data?.id, 10)
})

asRoot('vlan on a Linux bridge: exit 5 (no VLAN filtering here / not driven), nothing changed; VIDs 0, 4095, 4096 and words are exit 2', async (t) => {
  const f = await fixture(t)
  const { nic } = await nicWithFarEnd(t, f)
  await sh('ip', ['link', 'add', f.br, 'type', 'bridge'])
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', f.br])))
  const before = await views(f)
  const r = await plumb('vlan', f.guest, f.br, '10')
  t.is(r.exitCode, 5, r.stderr)
  t.regex(r.stderr, /VLAN filtering/)
  t.regex(r.stderr, /hint: .*ovs-port/)
  for (const vid of ['0', '4095', '4096', 'ten', '-1', '10.5']) {
    const bad = await plumb('vlan', f.guest, nic, vid, f.v4(10))
    t.is(bad.exitCode, 2, `VID ${vid}: ${bad.stderr}`)
    t.regex(bad.stderr, /invalid VLAN ID/)
  }
  t.deepEqual(await views(f), before)
})

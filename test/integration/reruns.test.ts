// Issue 8, items 10 and 11 on `ip netns` guests through the real CLI: a re-run with a different
// configuration in place is exit 4 naming the difference, with nothing changed, for every op;
// the same re-run is exit 0 "already"; `--route default@GW` is a default route like `@GW`.

import { hasOvs, ipJson, isRoot, sh, shQuiet, testIf } from '../helpers/index.js'
import { addrsOf, defaultRoutes, fixture, plumb, views } from './ops-fixture.js'
import { extraGuest, nicWithFarEnd, ovsBridgeName, worldView } from './links-fixture.js'

const asRoot = testIf(isRoot, 'reruns: needs root (ip netns, links)')
const withOvs = testIf(isRoot && hasOvs(), 'reruns: needs root and a running Open vSwitch')

asRoot('p2p-link re-run: the same is "already"; other addresses, MTU or --ifname-b are exit 4 naming the difference, nothing changed', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'b')
  const first = ['p2p-link', f.guest, b.guest, '--ip-a', f.v4(0, 31), '--ip-b', f.v4(1, 31)]
  t.is((await plumb(...first)).exitCode, 0)
  const before = await worldView(f.id, [f.ns, b.ns])

  const same = await plumb(...first, '--mtu', '1500')
  t.is(same.exitCode, 0, same.stderr)
  t.regex(same.stdout, /already linked/)

  const cases: Array<[string[], RegExp]> = [
    [['--ip-a', f.v4(2, 31), '--ip-b', f.v4(3, 31)], new RegExp(`eth1 lacks ${f.v4(2, 31)}.*${b.guest} eth1 lacks ${f.v4(3, 31)}`)],
    [['--ip-a', f.v4(0, 31), '--ip-b', f.v4(5, 31)], new RegExp(`${b.guest} eth1 lacks ${f.v4(5, 31)}`)],
    [['--ip-a', f.v4(0, 31), '--ip-b', f.v4(1, 30)], /has 198\.18\.\d+\.1\/31, not \/30/],
    [['--ip-a', f.v4(0, 31), '--ip-b', f.v4(1, 31), '--mtu', '1400'], /has mtu 1500, not 1400/],
    [['--ip-a', f.v4(0, 31), '--ip-b', f.v4(1, 31), '--ifname-b', 'p2p9'], /its other end is .* eth1, not p2p9/],
    // /32s need peer routes the /31 link does not have
    [['--ip-a', f.v4(0, 32), '--ip-b', f.v4(1, 32)], /has no route to/],
  ]
  for (const [extra, re] of cases) {
    const r = await plumb('p2p-link', f.guest, b.guest, ...extra)
    t.is(r.exitCode, 4, `${extra.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /^plumb: .* is already a p2p link to .* with a different configuration: /m)
    t.regex(r.stderr, re, extra.join(' '))
    t.regex(r.stderr, /^hint: detach it first/m)
  }
  t.deepEqual(await worldView(f.id, [f.ns, b.ns]), before, 'nothing changed')

  // a second link, asked for by name, is another link
  const second = await plumb('p2p-link', f.guest, b.guest, '--ifname-a', 'eth2', '--ip-a', f.v4(4, 31), '--ip-b', f.v4(5, 31))
  t.is(second.exitCode, 0, second.stderr)
  t.deepEqual(await addrsOf('eth2', f.ns), [f.v4(4, 31)])
})

asRoot('p2p-link: both ends go through the guest configuration batch (marks, up, /32 peer routes), and a failure rolls both back', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'b')
  const r = await plumb('p2p-link', f.guest, b.guest, '--ip-a', f.v4(2, 32), '--ip-b', f.v4(1, 32), '--json')
  t.is(r.exitCode, 0, r.stderr)
  for (const [ns, peer] of [[f.ns, f.v4(1)], [b.ns, f.v4(2)]] as const) {
    const [l] = await ipJson(['link', 'show', 'eth1'], ns)
    t.regex(String(l?.ifalias), /^plumb:1 role=guest op=p2p-link /)
    t.true((l?.flags as string[]).includes('UP'))
    const routes = await ipJson(['-4', 'route', 'show', 'dev', 'eth1'], ns)
    t.true(routes.some((x) => x.dst === peer.split('/')[0] && x.scope === 'link'), JSON.stringify(routes))
  }
  t.deepEqual(r.json.routes, [{ dst: `${f.v4(1).split('/')[0]}/32` }, { dst: `${f.v4(2).split('/')[0]}/32` }])

  // the peer route in B cannot be added (B already routes to A's address another way): the
  // whole link goes, in both guests
  const c = await extraGuest(t, f, 'c')
  const d = await extraGuest(t, f, 'd')
  await sh('ip', ['-n', d.ns, 'link', 'add', 'pt0', 'type', 'veth', 'peer', 'name', 'pt1'])
  await sh('ip', ['-n', d.ns, 'link', 'set', 'pt0', 'up'])
  await sh('ip', ['-n', d.ns, 'route', 'add', `${f.v4(7).split('/')[0]}/32`, 'dev', 'pt0'])
  const before = await worldView(f.id, [c.ns, d.ns])
  const bad = await plumb('p2p-link', c.guest, d.guest, '--ip-a', f.v4(7, 32), '--ip-b', f.v4(8, 32))
  t.is(bad.exitCode, 4, bad.stderr)
  t.regex(bad.stderr, /^rolled back: .*link del eth1/m)
  t.deepEqual(await worldView(f.id, [c.ns, d.ns]), before)
})

asRoot('move-dev re-run: the same addresses are "already"; another address is exit 4 and changes nothing', async (t) => {
  const f = await fixture(t)
  const dev = `${f.id}m`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', dev])))
  await sh('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${f.id}n`])
  t.is((await plumb('move-dev', f.guest, dev, f.v4(10))).exitCode, 0)
  const before = await views(f)
  const same = await plumb('move-dev', f.guest, dev, f.v4(10))
  t.is(same.exitCode, 0, same.stderr)
  t.regex(same.stdout, /already moved/)
  const other = await plumb('move-dev', f.guest, dev, f.v4(11))
  t.is(other.exitCode, 4, other.stderr)
  t.regex(other.stderr, new RegExp(`already moved into ${f.guest} as ${dev} with a different configuration: it lacks ${f.v4(11)}`))
  const gw = await plumb('move-dev', f.guest, dev, `${f.v4(10)}@${f.gw4}`)
  t.is(gw.exitCode, 4, gw.stderr)
  t.regex(gw.stderr, /has no IPv4 default route via/)
  t.deepEqual(await views(f), before)
})

asRoot('macvlan re-run with -i: another MTU, MAC or address is exit 4 naming it; the same is "already"', async (t) => {
  const f = await fixture(t)
  const { nic } = await nicWithFarEnd(t, f)
  t.is((await plumb('macvlan', f.guest, nic, f.v4(10), '-i', 'lan0', '--mtu', '1400')).exitCode, 0)
  const before = await views(f)
  t.is((await plumb('macvlan', f.guest, nic, f.v4(10), '-i', 'lan0', '--mtu', '1400')).exitCode, 0)
  for (const [extra, re] of [
    [['--mtu', '1300'], /has mtu 1400, not 1300/],
    [['--mac', '02:00:00:00:00:42'], /has mac .*, not 02:00:00:00:00:42/],
    [['--route', `198.19.${f.octet}.0/24@${f.gw4}`], /has no route to 198\.19\./],
  ] as const) {
    const r = await plumb('macvlan', f.guest, nic, f.v4(10), '-i', 'lan0', ...extra)
    t.is(r.exitCode, 4, `${extra.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /already a macvlan of .* with a different configuration/)
    t.regex(r.stderr, re)
  }
  t.deepEqual(await views(f), before)
})

withOvs('ovs-port re-run with -i: another address, MTU or tag is exit 4 naming it', async (t) => {
  const f = await fixture(t)
  const br = ovsBridgeName(t, f)
  t.is((await plumb('ovs-port', f.guest, br, f.v4(10), '-i', 'eth1', '--tag', '10', '--create-bridge')).exitCode, 0)
  const before = await worldView(f.id, [f.ns], { ovs: true })
  t.is((await plumb('ovs-port', f.guest, br, f.v4(10), '-i', 'eth1', '--tag', '10')).exitCode, 0)
  for (const [extra, re] of [
    [[f.v4(11), '--tag', '10'], new RegExp(`lacks ${f.v4(11)}`)],
    [[f.v4(10), '--tag', '10', '--mtu', '1400'], /has mtu 1500, not 1400/],
    [[f.v4(10), '--tag', '20'], /has tag 10, not tag 20/],
  ] as const) {
    const r = await plumb('ovs-port', f.guest, br, '-i', 'eth1', ...extra)
    t.is(r.exitCode, 4, `${extra.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /already on OVS bridge .* with a different configuration/)
    t.regex(r.stderr, re)
  }
  t.deepEqual(await worldView(f.id, [f.ns], { ovs: true }), before)
})

asRoot('attach-veth re-run with -i: a --route not there is exit 4 (routes are configuration too)', async (t) => {
  const f = await fixture(t)
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(10), '-i', 'eth1')).exitCode, 0)
  const before = await views(f)
  const r = await plumb('attach-veth', f.guest, f.br, f.v4(10), '-i', 'eth1', '--route', `198.19.${f.octet}.0/24@${f.gw4}`)
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, /with a different configuration: it has no route to 198\.19\./)
  t.deepEqual(await views(f), before)
})

asRoot('set-ip --route default@GW is a default route as @GW is: exit 4 (not EEXIST) without --replace-gateway, replaced with it, "already" on a re-run, removed by --del', async (t) => {
  const f = await fixture(t)
  const other = `198.18.${f.octet}.254`
  t.is((await plumb('attach-veth', f.guest, f.br, `${f.v4(10)}@${f.gw4}`)).exitCode, 0)
  const before = await views(f)

  const refused = await plumb('set-ip', f.guest, 'eth1', '--route', `default@${other}`)
  t.is(refused.exitCode, 4, refused.stderr)
  t.regex(refused.stderr, /^plumb: the guest already has an IPv4 default route via .* dev eth1$/m)
  t.regex(refused.stderr, /^hint: pass --replace-gateway/m)
  t.notRegex(refused.stderr, /EEXIST/)
  t.deepEqual(await views(f), before)

  const r = await plumb('set-ip', f.guest, 'eth1', '--route', `default@${other}`, '--replace-gateway')
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual((await defaultRoutes(f.ns)).map((d) => [d.gateway, d.dev]), [[other, 'eth1']])
  const again = await plumb('set-ip', f.guest, 'eth1', '--route', `default@${other}`)
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already set/)

  // the same through the IP form works as it did; --del of the route form removes it
  const del = await plumb('set-ip', f.guest, 'eth1', '--route', `default@${other}`, '--del')
  t.is(del.exitCode, 0, del.stderr)
  t.deepEqual(await defaultRoutes(f.ns), [])
})

asRoot('set-ip --route to a destination already routed another way: exit 4 before anything is touched (not EEXIST after a rollback)', async (t) => {
  const f = await fixture(t)
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(10))).exitCode, 0)
  const dst = `198.19.${f.octet}.0/24`
  t.is((await plumb('set-ip', f.guest, 'eth1', '--route', `${dst}@${f.gw4}`)).exitCode, 0)
  const before = await views(f)
  const r = await plumb('set-ip', f.guest, 'eth1', f.v4(11), '--route', `${dst}@198.18.${f.octet}.254`)
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, new RegExp(`already has a route to ${dst.replace(/\./g, '\\.')} via ${f.gw4.replace(/\./g, '\\.')} dev eth1`))
  t.notRegex(r.stderr, /rolled back/)
  t.deepEqual(await views(f), before)
})

asRoot('set-ip with an address already there at another prefix: exit 4 naming both, nothing changed', async (t) => {
  const f = await fixture(t)
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(10))).exitCode, 0)
  const before = await views(f)
  const r = await plumb('set-ip', f.guest, 'eth1', f.v4(10, 16))
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, new RegExp(`already has ${f.v4(10).replace(/\./g, '\\.')}, not /16`))
  t.regex(r.stderr, /^hint: remove it first/m)
  t.deepEqual(await views(f), before)
})

// p2p-link (guest<->guest, guest<->host; /31 and /32 + peer routes) and move-dev (a veth end
// moved into a guest and given back) on `ip netns` guests, read back with ip -j, and TCP, UDP and
// ping over each.

import { assertTraffic, getLink, ipJson, isRoot, makeNetns, sh, shQuiet, testIf } from '../helpers/index.js'
import { addrsOf, fixture, guestLinks, hostView, plumb, views } from './ops-fixture.js'
import { bare, extraGuest, linkNames, plumbIn, worldView } from './links-fixture.js'

const asRoot = testIf(isRoot, 'links-p2p-move: needs root (ip netns, links)')

asRoot('p2p-link between two guests with /31: ends born in each, TCP, UDP and ping with no bridge; ls on each side names the other; detach on either side removes both ends', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'b')
  const r = await plumb('p2p-link', f.guest, b.guest, '--ip-a', f.v4(0, 31), '--ip-b', f.v4(1, 31), '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.like(r.json, { op: 'p2p-link', changed: true })

  const a1 = (await guestLinks(f.ns)).get('eth1')
  const b1 = (await guestLinks(b.ns)).get('eth1')
  t.is(a1?.linkinfo?.info_kind, 'veth')
  t.is(b1?.linkinfo?.info_kind, 'veth')
  t.is(a1?.link_index, b1?.ifindex, "a's peer is b's eth1")
  t.is(b1?.link_index, a1?.ifindex)
  t.deepEqual(await addrsOf('eth1', f.ns), [f.v4(0, 31)])
  t.deepEqual(await addrsOf('eth1', b.ns), [f.v4(1, 31)])
  t.deepEqual((await hostView(f.id)).links, [], 'nothing on the host')
  await assertTraffic(t, f.ns, b.ns, bare(f.v4(1)), 'a -> b')
  await assertTraffic(t, b.ns, f.ns, bare(f.v4(0)), 'b -> a')

  const again = await plumb('p2p-link', f.guest, b.guest, '--ip-a', f.v4(0, 31), '--ip-b', f.v4(1, 31))
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already/)

  const la = await plumb('ls', f.guest, '--json')
  t.like(la.json.guests[0].interfaces[0], { name: 'eth1', op: 'p2p-link', peer: 'eth1', peerGuest: b.guest })
  const lb = await plumb('ls', b.guest)
  t.regex(lb.stdout, new RegExp(`eth1 +p2p-link .*peer ${f.guest} eth1`))

  const d = await plumb('detach', b.guest, 'eth1')
  t.is(d.exitCode, 0, d.stderr)
  t.deepEqual(await linkNames(f.ns), ['lo'], 'the far end went with it')
  t.deepEqual(await linkNames(b.ns), ['lo'])
})

asRoot('p2p-link guest <-> host with /32 and peer routes: TCP, UDP and ping both ways; detach on the guest removes the host end and its route', async (t) => {
  const f = await fixture(t)
  const hostIf = `${f.id}h`
  const r = await plumb('p2p-link', f.guest, 'host', '--ip-a', f.v4(2, 32), '--ip-b', f.v4(1, 32), '--ifname-b', hostIf, '--ifname-a', 'up0', '--mtu', '1400', '--json')
  t.is(r.exitCode, 0, r.stderr)

  const host = await getLink(hostIf)
  t.is(host?.linkinfo?.info_kind, 'veth')
  t.is(host?.mtu, 1400)
  t.regex(String(host?.ifalias), /^plumb:1 role=host op=p2p-link /)
  t.deepEqual(await addrsOf(hostIf), [f.v4(1, 32)])
  const up0 = (await guestLinks(f.ns)).get('up0')
  t.is(up0?.mtu, 1400)
  t.deepEqual(await addrsOf('up0', f.ns), [f.v4(2, 32)])
  // /32 on both sides: each needs a host route to the other over the link
  const guestRoutes = await ipJson(['-4', 'route', 'show'], f.ns)
  t.true(guestRoutes.some((x) => x.dst === bare(f.v4(1)) && x.dev === 'up0' && x.scope === 'link'), JSON.stringify(guestRoutes))
  const hostRoutes = await ipJson(['-4', 'route', 'show', 'dev', hostIf])
  t.true(hostRoutes.some((x) => x.dst === bare(f.v4(2)) && x.scope === 'link'), JSON.stringify(hostRoutes))
  await assertTraffic(t, undefined, f.ns, bare(f.v4(2)), 'the host -> the guest')
  await assertTraffic(t, f.ns, undefined, bare(f.v4(1)), 'the guest -> the host')

  const ls = await plumb('ls', f.guest, '--json')
  t.like(ls.json.guests[0].interfaces[0], { name: 'up0', op: 'p2p-link', peer: hostIf, peerGuest: 'host' })

  const d = await plumb('detach', f.guest, 'up0')
  t.is(d.exitCode, 0, d.stderr)
  t.is(await getLink(hostIf), undefined)
  t.deepEqual(await ipJson(['-4', 'route', 'show', bare(f.v4(2))]), [])
  t.deepEqual(await linkNames(f.ns), ['lo'])
})

asRoot('p2p-link without addresses sets none; --dry-run changes nothing; bad input refused with the world unchanged', async (t) => {
  const f = await fixture(t)
  const b = await extraGuest(t, f, 'b')
  const before = await worldView(f.id, [f.ns, b.ns])
  const dry = await plumb('p2p-link', f.guest, b.guest, '--ip-a', f.v4(0, 31), '--ip-b', f.v4(1, 31), '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.regex(dry.stdout, new RegExp(`^ip link add eth1 netns ${f.ns} mtu 1500 numtxqueues 1 numrxqueues 1 type veth peer name eth1 netns ${b.ns} mtu 1500 numtxqueues 1 numrxqueues 1$`, 'm'))
  t.deepEqual(await worldView(f.id, [f.ns, b.ns]), before)

  const bad: Array<[string[], number, RegExp]> = [
    [[f.guest, f.guest], 2, /same network namespace/],
    [[f.guest, `netns:${f.id}zz`], 3, /no such network namespace/],
    [['host', f.guest], 2, /second side may be the host/],
    [[f.guest, b.guest, '--ip-a', 'dhcp'], 2, /static/],
    [[f.guest, b.guest, '--ip-a', f.v4(0, 31), '--ip-b', f.v6(1, 127)], 2, /IPv4 but --ip-b is IPv6/],
    [[f.guest, b.guest, '--ip-a', bare(f.v4(0))], 2, /prefix|did you mean/i],
    [[f.guest, b.guest, '--ifname-a', 'lo'], 4, /already exists/],
    [[f.guest, b.guest, '--ifname-b', 'lo'], 4, /already exists/],
    [[f.guest, b.guest, '--mtu', '20'], 2, /MTU/],
  ]
  for (const [args, code, re] of bad) {
    const r = await plumb('p2p-link', ...args)
    t.is(r.exitCode, code, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, re, args.join(' '))
  }
  t.deepEqual(await worldView(f.id, [f.ns, b.ns]), before)

  const bare1 = await plumb('p2p-link', f.guest, b.guest)
  t.is(bare1.exitCode, 0, bare1.stderr)
  t.deepEqual(await addrsOf('eth1', f.ns), [])
  t.deepEqual(await addrsOf('eth1', b.ns), [])
})

asRoot("move-dev: a host veth end moves in under its own name with addresses and carries TCP, UDP and ping; ls shows it; detach gives it back under its old name, alias and state", async (t) => {
  const f = await fixture(t)
  const dev = `${f.id}m`
  // its peer in a netns of its own: the LAN behind the NIC, holding the gateway's address
  const far = await makeNetns(t, { name: `${f.id}f` })
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', dev])))
  await sh('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${f.id}n`, 'netns', far])
  await sh('ip', ['-n', far, 'addr', 'add', `${f.gw4}/24`, 'dev', `${f.id}n`])
  await sh('ip', ['-n', far, 'link', 'set', `${f.id}n`, 'up'])
  await sh('ip', ['link', 'set', dev, 'alias', 'pt test nic', 'up'])
  const mac = (await getLink(dev))?.address

  const dry = await plumb('move-dev', f.guest, dev, f.v4(10), '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.regex(dry.stdout, new RegExp(`^ip link set ${dev} netns ${f.ns}$`, 'm'))
  t.truthy(await getLink(dev), 'dry-run left it on the host')

  const r = await plumb('move-dev', f.guest, dev, `${f.v4(10)}@${f.gw4}`, '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.is(await getLink(dev), undefined, 'gone from the host')
  const inGuest = (await guestLinks(f.ns)).get(dev)
  t.is(inGuest?.address, mac, 'the same device')
  t.true((inGuest?.flags as string[]).includes('UP'))
  t.regex(String(inGuest?.ifalias), /role=moved op=move-dev .*orig=/)
  t.deepEqual(await addrsOf(dev, f.ns), [f.v4(10)])
  t.true((await ipJson(['-4', 'route', 'show', 'default'], f.ns)).some((x) => x.gateway === f.gw4 && x.dev === dev))
  await assertTraffic(t, f.ns, far, f.gw4, 'the guest -> the far end')
  await assertTraffic(t, far, f.ns, bare(f.v4(10)), 'the far end -> the guest')

  const again = await plumb('move-dev', f.guest, dev, f.v4(10))
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already/)

  const ls = await plumb('ls', f.guest, '--json')
  t.like(ls.json.guests[0].interfaces[0], { name: dev, op: 'move-dev', origName: dev, addresses: [f.v4(10)] })

  const d = await plumb('detach', f.guest, dev)
  t.is(d.exitCode, 0, d.stderr)
  const back = await getLink(dev)
  t.is(back?.address, mac)
  t.is(back?.ifalias, 'pt test nic', 'its own alias restored, plumb\'s mark gone')
  t.true((back?.flags as string[]).includes('UP'), 'up again, as it was')
  t.deepEqual(await linkNames(f.ns), ['lo'])
})

asRoot('move-dev -i renames it in the guest; a device that was down comes back down under its old name', async (t) => {
  const f = await fixture(t)
  const dev = `${f.id}m`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', dev])))
  await sh('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${f.id}n`])
  const r = await plumb('move-dev', f.guest, dev, '-i', 'eth7')
  t.is(r.exitCode, 0, r.stderr)
  t.truthy((await guestLinks(f.ns)).get('eth7'))
  t.is((await plumb('detach', f.guest, 'eth7')).exitCode, 0)
  const back = await getLink(dev)
  t.truthy(back)
  t.false((back?.flags as string[]).includes('UP'))
  t.is(back?.ifalias, undefined)
})

asRoot("move-dev refuses the interface carrying the host's default route unless --force (run in a throwaway host netns)", async (t) => {
  const f = await fixture(t)
  // The "host" here is a netns of the test's own: plumb runs inside it, so its default route
  // is the one at stake, never the machine's.
  const fake = await extraGuest(t, f, 'h')
  const dev = `${f.id}d`
  await sh('ip', ['-n', fake.ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', `${f.id}e`])
  await sh('ip', ['-n', fake.ns, 'link', 'set', dev, 'up'])
  await sh('ip', ['-n', fake.ns, 'addr', 'add', f.v4(2), 'dev', dev])
  await sh('ip', ['-n', fake.ns, 'route', 'add', 'default', 'via', f.gw4, 'dev', dev])
  const before = await worldView(f.id, [f.ns, fake.ns])
  const r = await plumbIn(fake.ns, 'move-dev', f.guest, dev)
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, /default route/)
  t.regex(r.stderr, /--force/)
  t.deepEqual(await worldView(f.id, [f.ns, fake.ns]), before)

  const forced = await plumbIn(fake.ns, 'move-dev', f.guest, dev, '--force')
  t.is(forced.exitCode, 0, forced.stderr)
  t.truthy((await guestLinks(f.ns)).get(dev))
  t.false((await linkNames(fake.ns)).includes(dev))
})

asRoot('move-dev bad input: missing device (3), a bridge (4), a name taken in the guest (4), plumb\'s own host end (4); nothing changed', async (t) => {
  const f = await fixture(t)
  const dev = `${f.id}m`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', dev])))
  await sh('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${f.id}n`])
  await sh('ip', ['link', 'add', f.br, 'type', 'bridge'])
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', f.br])))
  const hostEnd = `${f.id}x`
  const p2p = await plumb('p2p-link', f.guest, 'host', '--ifname-b', hostEnd)
  t.is(p2p.exitCode, 0, p2p.stderr)
  const before = await views(f)
  const cases: Array<[string[], number, RegExp]> = [
    [[f.guest, `${f.id}zz`], 3, /no interface/],
    [[f.guest, f.br], 4, /bridge/],
    [[f.guest, dev, '-i', 'eth1'], 4, /already exists/],
    [[f.guest, hostEnd], 4, /plumb's own/],
    [[f.guest, dev, 'dhcpx'], 2, /./],
  ]
  for (const [args, code, re] of cases) {
    const r = await plumb('move-dev', ...args)
    t.is(r.exitCode, code, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, re)
  }
  t.deepEqual(await views(f), before)
})

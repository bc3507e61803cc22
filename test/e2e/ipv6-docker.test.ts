// IPv6 into real `docker run --net=none` containers, which Docker starts with IPv6 off in their
// netns (net.ipv6.conf.all/default.disable_ipv6=1): plumb turns it on for the interfaces it
// configures when an IPv6 address is asked for, and only then; set-ip on an interface plumb did
// not make keeps what it found in the guest record and puts it back (rollback, the last IPv6
// address deleted, detach --all). Read back from /proc/sys in the container's netns, ip -j, the
// record file, and TCP/UDP/ping.

import { randomInt } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { assertTraffic, hasDocker, hasOvs, holdGcLock, ipJson, isRoot, makeContainer, makeNetns, sh, shIn, shQuiet, testIf, uniq, reserveOctet } from '../helpers/index.js'
import type { Teardown, TestContainer } from '../helpers/index.js'
import { plumb, sweepHost } from '../integration/ops-fixture.js'

const withDocker = testIf(isRoot && hasDocker(), 'ipv6-docker: needs root and dockerd with plumb-test:busybox (scripts/testbed.sh up)')
const withDockerOvs = testIf(isRoot && hasDocker() && hasOvs(), 'ipv6-docker: needs root, dockerd with plumb-test:busybox and Open vSwitch')

/** A test id (its host leftovers swept at teardown) and a /64 of 2001:db8::/32 of its own. */
function ids(t: Teardown): { id: string; p6: string } {
  const id = uniq()
  t.teardown(() => sweepHost(id))
  return { id, p6: `2001:db8:${randomInt(0x100, 0xffff).toString(16)}:` }
}

const at = (c: TestContainer): { path: string } => ({ path: c.sandboxKey })

/** net.ipv6.conf.KEY.disable_ipv6 as the container's netns sees it. */
const disabled = (c: TestContainer, key: string): Promise<string> => shIn(at(c), 'cat', [`/proc/sys/net/ipv6/conf/${key}/disable_ipv6`])

/** The global IPv6 addresses on an interface of a container (link-local left out). */
async function v6Addrs(c: TestContainer, ifname: string): Promise<string[]> {
  const [o] = await ipJson(['-6', 'addr', 'show', 'dev', ifname], at(c))
  return ((o?.addr_info ?? []) as Array<{ local: string; prefixlen: number; scope: string }>).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`).sort()
}

withDocker("the README's IPv6 example on real containers (attach-veth web br0 2001:db8::10/64 -i eth2 --mtu 1400 --mac seed:web, after an IPv4 attach): IPv6 on for that interface only; TCP, UDP and ping over IPv6 between containers and from the host", async (t) => {
  const net = `198.18.${reserveOctet(t)}`
  const { id, p6 } = ids(t)
  const br = `${id}b`
  const [web, db] = await Promise.all([makeContainer(t, { name: `${id}w` }), makeContainer(t, { name: `${id}d` })])
  t.is(await disabled(web, 'default'), '1', 'Docker starts the container with IPv6 off')

  // the README's lines, in its order
  const v4 = await plumb('attach-veth', web.name, br, `${net}.10/24@${net}.1`)
  t.is(v4.exitCode, 0, v4.stderr)
  t.is(await disabled(web, 'eth1'), '1', 'no IPv6 asked for: left as the container has it')
  const r = await plumb('attach-veth', web.name, br, `${p6}:10/64`, '-i', 'eth2', '--mtu', '1400', '--mac', `seed:${web.name}`, '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.true((r.json.plan as string[]).some((l) => l.endsWith('sysctl -qw net.ipv6.conf.eth2.disable_ipv6=0')), r.json.plan.join('\n'))
  t.is((await plumb('attach-veth', db.name, br, `${p6}:11/64`)).exitCode, 0)
  t.deepEqual(await v6Addrs(web, 'eth2'), [`${p6}:10/64`])
  t.is(await disabled(web, 'eth2'), '0')
  t.is(await disabled(web, 'eth1'), '1')
  t.is(await disabled(web, 'all'), '1', 'all stays as Docker set it')
  t.is(await disabled(web, 'default'), '1', 'default stays as Docker set it')

  await assertTraffic(t, at(web), at(db), `${p6}:11`, 'web -> db')
  await assertTraffic(t, at(db), at(web), `${p6}:10`, 'db -> web')
  // the host on the bridge (an address of the test's own)
  await sh('ip', ['addr', 'add', `${p6}:1/64`, 'dev', br, 'nodad'])
  await assertTraffic(t, undefined, at(web), `${p6}:10`, 'the host -> web')
  await assertTraffic(t, at(web), undefined, `${p6}:1`, 'web -> the host')

  t.is((await plumb('detach', web.name, '--all')).exitCode, 0)
  t.deepEqual((await ipJson(['link', 'show'], at(web))).map((l) => l.ifname), ['lo'])
  t.is(await disabled(web, 'default'), '1')
})

withDocker('set-ip with IPv6 on an interface plumb did not make: turned on with the value found kept in the guest record; back off on rollback, with the last IPv6 address, and on detach --all; gc forgets the record once the container is gone', async (t) => {
  await holdGcLock(t) // gc is host-wide
  const { id, p6 } = ids(t)
  const c = await makeContainer(t, { name: `${id}c` })
  // someone else's interface in the container: a veth whose host end stays on the host
  const hostEnd = `${id}h`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', hostEnd])))
  await sh('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth5', 'netns', String(c.pid)])
  await sh('ip', ['link', 'set', hostEnd, 'up'])
  await sh('ip', ['addr', 'add', `${p6}:1/64`, 'dev', hostEnd, 'nodad'])
  await shIn(at(c), 'ip', ['link', 'set', 'eth5', 'up'])
  t.is(await disabled(c, 'eth5'), '1', "inherited from the container's default")
  const record = `/run/plumb/guests/${c.id}.json`
  const key = 'net.ipv6.conf.eth5.disable_ipv6'
  const recorded = (): unknown => (existsSync(record) ? (JSON.parse(readFileSync(record, 'utf8')) as { sysctl?: Record<string, unknown> }).sysctl?.[key] : undefined)

  // rollback: a route the kernel refuses (gateway on no connected subnet) comes after the address
  const bad = await plumb('set-ip', c.name, 'eth5', `${p6}:20/64`, '--route', '2001:db8:ffff::/48@2001:db8:fffe::1')
  t.is(bad.exitCode, 1, bad.stderr)
  t.regex(bad.stderr, /rolled back: .*disable_ipv6=1/)
  t.is(await disabled(c, 'eth5'), '1', 'the rollback turned IPv6 off again')
  t.deepEqual(await v6Addrs(c, 'eth5'), [])
  t.is(recorded(), undefined)

  const r = await plumb('set-ip', c.name, 'eth5', `${p6}:20/64`, `${p6}:21/64`)
  t.is(r.exitCode, 0, r.stderr)
  t.is(await disabled(c, 'eth5'), '0')
  t.deepEqual(recorded(), { found: '1', set: '0' }, 'what plumb found is in the guest record')
  t.deepEqual(await v6Addrs(c, 'eth5'), [`${p6}:20/64`, `${p6}:21/64`])
  const ls = await plumb('ls', c.name, '--json')
  t.deepEqual(ls.json.guests[0].sysctl, [{ key, value: '0', found: '1' }])
  await assertTraffic(t, undefined, at(c), `${p6}:20`, 'the host -> the container')
  await assertTraffic(t, at(c), undefined, `${p6}:1`, 'the container -> the host')

  const one = await plumb('set-ip', c.name, 'eth5', `${p6}:20/64`, '--del')
  t.is(one.exitCode, 0, one.stderr)
  t.is(await disabled(c, 'eth5'), '0', 'an IPv6 address is left: IPv6 stays on')
  const last = await plumb('set-ip', c.name, 'eth5', `${p6}:21/64`, '--del')
  t.is(last.exitCode, 0, last.stderr)
  t.regex(last.stdout, /restored in .*disable_ipv6=1/)
  t.is(await disabled(c, 'eth5'), '1', 'as plumb found it')
  t.is(recorded(), undefined)
  const again = await plumb('set-ip', c.name, 'eth5', `${p6}:21/64`, '--del')
  t.is(again.exitCode, 0, again.stderr)
  t.is(await disabled(c, 'eth5'), '1')

  // detach --all undoes it too (and the kernel drops the IPv6 addresses with it)
  t.is((await plumb('set-ip', c.name, 'eth5', `${p6}:22/64`)).exitCode, 0)
  t.is(await disabled(c, 'eth5'), '0')
  const d = await plumb('detach', c.name, '--all')
  t.is(d.exitCode, 0, d.stderr)
  t.is(await disabled(c, 'eth5'), '1')
  t.deepEqual(await v6Addrs(c, 'eth5'), [])
  t.is(recorded(), undefined)

  t.is((await plumb('set-ip', c.name, 'eth5', `${p6}:22/64`)).exitCode, 0)
  t.truthy(recorded())
  await sh('docker', ['rm', '-f', c.name])
  const g = await plumb('gc')
  t.is(g.exitCode, 0, g.stderr)
  t.false(existsSync(record), 'gc forgot the record of a container that is gone')
})

withDockerOvs('every link kind takes an IPv6 address in a container and carries TCP, UDP and ping over it: ovs-port and vlan on OVS, macvlan, p2p-link, move-dev', async (t) => {
  const { id, p6 } = ids(t)
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` })])
  const ok = async (...args: string[]): Promise<void> => {
    const r = await plumb(...args)
    t.is(r.exitCode, 0, `${args.join(' ')}: ${r.stderr}`)
  }
  // OVS (userspace datapath): an access port each way in
  const obr = `${id}o`
  t.teardown(async () => void (await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', obr])))
  await ok('ovs-port', a.name, obr, `${p6}1::a/64`, '--tag', '10', '--create-bridge', '-i', 'ovs0')
  await ok('vlan', b.name, obr, '10', `${p6}1::b/64`, '-i', 'ovs0')
  await assertTraffic(t, at(a), at(b), `${p6}1::b`, 'ovs-port -> vlan on OVS')
  await assertTraffic(t, at(b), at(a), `${p6}1::a`, 'vlan on OVS -> ovs-port')

  // macvlan on a veth "NIC" whose far end is a netns of its own
  const far = await makeNetns(t, { name: `${id}f` })
  const nic = `${id}p`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', nic])))
  await sh('ip', ['link', 'add', nic, 'type', 'veth', 'peer', 'name', 'lan0', 'netns', far])
  await sh('ip', ['link', 'set', nic, 'up'])
  await sh('ip', ['-n', far, 'link', 'set', 'lan0', 'up'])
  await sh('ip', ['-n', far, 'addr', 'add', `${p6}2::1/64`, 'dev', 'lan0', 'nodad'])
  await ok('macvlan', a.name, nic, `${p6}2::a/64`, '-i', 'mv0')
  await ok('macvlan', b.name, nic, `${p6}2::b/64`, '-i', 'mv0')
  await assertTraffic(t, at(a), at(b), `${p6}2::b`, 'macvlan a -> b')
  await assertTraffic(t, at(b), far, `${p6}2::1`, 'macvlan b -> the far end')

  await ok('p2p-link', a.name, b.name, '--ip-a', `${p6}3::a/64`, '--ip-b', `${p6}3::b/64`, '--ifname-a', 'pp0', '--ifname-b', 'pp0')
  await assertTraffic(t, at(a), at(b), `${p6}3::b`, 'p2p-link a -> b')

  // move-dev: a veth end into the container, its peer in the far netns
  const dev = `${id}m`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', dev])))
  await sh('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', 'lan1', 'netns', far])
  await sh('ip', ['-n', far, 'link', 'set', 'lan1', 'up'])
  await sh('ip', ['-n', far, 'addr', 'add', `${p6}4::1/64`, 'dev', 'lan1', 'nodad'])
  await ok('move-dev', a.name, dev, `${p6}4::a/64`, '-i', 'mv1')
  await assertTraffic(t, far, at(a), `${p6}4::a`, 'the far end -> move-dev')

  for (const ifname of ['ovs0', 'mv0', 'pp0', 'mv1']) t.is(await disabled(a, ifname), '0', `${ifname}: IPv6 on`)
  t.is(await disabled(a, 'default'), '1')
  for (const x of [a, b]) t.is((await plumb('detach', x.name, '--all')).exitCode, 0)
})

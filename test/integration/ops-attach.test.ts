// attach-veth on `ip netns` guests, through the real CLI and the library API, with every result
// read back from the kernel (ip -j) rather than from plumb's own output.

import { attachVeth, parseMac, PlumbError } from '../../lib/index.js'
import { assertTraffic, getLink, ipJson, isRoot, makeBridge, makeNetns, makeVethPair, sh, testIf } from '../helpers/index.js'
import {
  addrsOf,
  defaultRoutes,
  firewallRules,
  fixture,
  foreignNic,
  forwardDropActive,
  guestLinks,
  plumb,
  routesOf,
  views,
} from './ops-fixture.js'

const asRoot = testIf(isRoot, 'ops-attach: needs root (ip netns, links)')

const flags = (l: { flags?: string[] } | undefined): string[] => l?.flags ?? []

asRoot('attach to a missing bridge: bridge made and marked, both ends up, v4+v6 addresses and gateways, -i/-l/--mac seed/--route', async (t) => {
  const f = await fixture(t)
  const hostIf = `${f.id}h`
  const route = `198.19.${f.octet}.0/24`
  const r = await plumb('attach-veth', f.guest, f.br, `${f.v4(10)}@${f.gw4}`, `${f.v6(10)}@${f.gw6}`, '-i', 'eth3', '-l', hostIf, '--mac', 'seed:x', '--route', `${route}@198.18.${f.octet}.254`, '--json')
  t.is(r.exitCode, 0, r.stderr)

  const br = await getLink(f.br)
  t.is(br?.linkinfo?.info_kind, 'bridge')
  t.true(flags(br).includes('UP'))
  t.regex(String(br?.ifalias), /^plumb:/)

  const host = await getLink(hostIf)
  t.is(host?.linkinfo?.info_kind, 'veth')
  t.is(host?.master, f.br)
  t.true(flags(host).includes('UP'))
  t.regex(String(host?.ifalias), /^plumb:.*role=host/)

  const eth = (await guestLinks(f.ns)).get('eth3')
  t.truthy(eth)
  t.true(flags(eth).includes('UP'))
  t.is(eth!.address, parseMac('seed:x'))
  t.is(eth!.mtu, 1500)
  t.regex(String(eth!.ifalias), /^plumb:.*role=guest/)
  t.deepEqual(await addrsOf('eth3', f.ns), [f.v6(10), f.v4(10)].sort())
  // the gratuitous ARP is the kernel's (arp_notify, set over netlink), not an arping
  t.is((await sh('ip', ['netns', 'exec', f.ns, 'sysctl', '-n', 'net.ipv4.conf.eth3.arp_notify'])).trim(), '1')

  const defaults = await defaultRoutes(f.ns)
  t.true(defaults.some((d) => d.gateway === f.gw4 && d.dev === 'eth3'), JSON.stringify(defaults))
  t.true(defaults.some((d) => d.gateway === f.gw6 && d.dev === 'eth3'), JSON.stringify(defaults))
  const routes = await routesOf(f.ns)
  t.true(routes.some((x) => x.dst === route && x.gateway === `198.18.${f.octet}.254` && x.dev === 'eth3'), JSON.stringify(routes))

  // the --json result describes the same objects
  const j = r.json
  t.is(j.op, 'attach-veth')
  t.true(j.changed)
  t.regex(j.mark, /^plumb:/)
  const guestIf = j.interfaces.find((i: { netns: string }) => i.netns === f.guest)
  t.like(guestIf, { name: 'eth3', kind: 'veth', peer: hostIf, mtu: 1500, mac: parseMac('seed:x') })
  t.like(j.interfaces.find((i: { netns: string }) => i.netns === 'host'), { name: hostIf, kind: 'veth', peer: 'eth3', bridge: f.br })
  t.deepEqual(
    j.ips.map((i: { address: string; gateway?: string }) => [i.address, i.gateway]).sort(),
    [[f.v4(10), f.gw4], [f.v6(10), f.gw6]].sort(),
  )
  t.is(j.interfaces[j.ips[0].interface].name, 'eth3')
  t.true(j.routes.some((x: { dst: string; gw?: string }) => x.dst === '0.0.0.0/0' && x.gw === f.gw4))
  t.true(j.routes.some((x: { dst: string; gw?: string }) => x.dst === route))

  if (await forwardDropActive()) t.is((await firewallRules('iptables', f.br)).length, 1, 'one ACCEPT rule for the bridge')
})

asRoot('two guests on one Linux bridge carry TCP, UDP and ping, IPv4 and IPv6, both ways (through Docker\'s FORWARD DROP where it is set)', async (t) => {
  const f = await fixture(t)
  const b = await makeNetns(t, { name: `${f.id}g` })
  for (const [guest, host] of [[f.guest, 10], [`netns:${b}`, 11]] as const) {
    const r = await plumb('attach-veth', guest, f.br, f.v4(host), f.v6(host))
    t.is(r.exitCode, 0, r.stderr)
  }
  const at = (cidr: string): string => cidr.split('/')[0]!
  await assertTraffic(t, f.ns, b, at(f.v4(11)), 'IPv4 a -> b')
  await assertTraffic(t, b, f.ns, at(f.v4(10)), 'IPv4 b -> a')
  await assertTraffic(t, f.ns, b, at(f.v6(11)), 'IPv6 a -> b')
  await assertTraffic(t, b, f.ns, at(f.v6(10)), 'IPv6 b -> a')
})

asRoot('defaults: the first free ethN, a derived host end (pl…, ≤ 15 bytes) enslaved and up', async (t) => {
  const f = await fixture(t)
  const r = await plumb('attach-veth', f.guest, f.br, f.v4(11), '--json')
  t.is(r.exitCode, 0, r.stderr)
  const hostIf = r.json.interfaces.find((i: { netns: string }) => i.netns === 'host').name as string
  t.regex(hostIf, /^pl/)
  t.true(Buffer.byteLength(hostIf) <= 15)
  const host = await getLink(hostIf)
  t.is(host?.master, f.br)
  t.true(flags(host).includes('UP'))
  t.regex(String(host?.ifalias), new RegExp(f.id))
  const links = await guestLinks(f.ns)
  t.truthy(links.get('eth1'))
  t.true(flags(links.get('eth1')).includes('UP'))
  t.deepEqual(await addrsOf('eth1', f.ns), [f.v4(11)])
  t.deepEqual(await defaultRoutes(f.ns), [])

  // a second attach takes eth2 and another host end
  const r2 = await plumb('attach-veth', f.guest, f.br, f.v4(12), '--json')
  t.is(r2.exitCode, 0, r2.stderr)
  t.truthy((await guestLinks(f.ns)).get('eth2'))
  t.not(r2.json.interfaces.find((i: { netns: string }) => i.netns === 'host').name, hostIf)
})

asRoot('an existing bridge that is down is brought up; the MTU defaults to the bridge\'s; --mac aa:… is used as given', async (t) => {
  const f = await fixture(t)
  await makeBridge(t, f.br, { up: false })
  await sh('ip', ['link', 'set', f.br, 'mtu', '1400'])
  const r = await plumb('attach-veth', f.guest, f.br, f.v4(10), '--mac', '02:00:5e:aa:bb:cc', '-l', `${f.id}h`)
  t.is(r.exitCode, 0, r.stderr)
  t.regex(r.stdout, /was down: brought it up/)
  const br = await getLink(f.br)
  t.true(flags(br).includes('UP'))
  t.is(br?.ifalias, undefined, 'an existing bridge is not marked as plumb\'s')
  const eth = (await guestLinks(f.ns)).get('eth1')!
  t.is(eth.mtu, 1400)
  t.is(eth.address, '02:00:5e:aa:bb:cc')
  t.is((await getLink(`${f.id}h`))?.mtu, 1400)
})

asRoot('--mtu sets both ends', async (t) => {
  const f = await fixture(t)
  const r = await plumb('attach-veth', f.guest, f.br, f.v6(10), '--mtu', '1280', '-l', `${f.id}h`)
  t.is(r.exitCode, 0, r.stderr)
  t.is((await guestLinks(f.ns)).get('eth1')?.mtu, 1280)
  t.is((await getLink(`${f.id}h`))?.mtu, 1280)
})

asRoot('a gateway outside the subnet gets an on-link host route before the default route', async (t) => {
  const f = await fixture(t)
  const gw = `198.18.${(f.octet + 1) % 256}.1`
  const r = await plumb('attach-veth', f.guest, f.br, `${f.v4(10)}@${gw}`)
  t.is(r.exitCode, 0, r.stderr)
  const routes = await routesOf(f.ns)
  t.true(routes.some((x) => x.dst === gw && x.dev === 'eth1' && x.scope === 'link'), JSON.stringify(routes))
  t.true(routes.some((x) => x.dst === 'default' && x.gateway === gw && x.dev === 'eth1'), JSON.stringify(routes))
})

asRoot('a name that is an existing non-bridge interface: exit 4, nothing changed', async (t) => {
  const f = await fixture(t)
  await makeVethPair(t, `${f.id}v`, `${f.id}w`)
  const before = await views(f)
  const r = await plumb('attach-veth', f.guest, `${f.id}v`, f.v4(10))
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, /^plumb: .*not a bridge/m)
  t.regex(r.stderr, /^hint: /m)
  t.deepEqual(await views(f), before)
})

asRoot('idempotent: the same attach twice is exit 0, says "already", and leaves the same state', async (t) => {
  const f = await fixture(t)
  const args = ['attach-veth', f.guest, f.br, `${f.v4(10)}@${f.gw4}`, `${f.v6(10)}@${f.gw6}`]
  const first = await plumb(...args)
  t.is(first.exitCode, 0, first.stderr)
  const after1 = await views(f)
  const second = await plumb(...args)
  t.is(second.exitCode, 0, second.stderr)
  t.regex(second.stdout, /already/)
  t.deepEqual(await views(f), after1)
  // with -i naming the interface it made, too
  const third = await plumb(...args, '-i', 'eth1', '--json')
  t.is(third.exitCode, 0, third.stderr)
  t.false(third.json.changed)
  t.deepEqual(await views(f), after1)
})

asRoot('a conflicting re-run (same -i, another address) is exit 4 and changes nothing', async (t) => {
  const f = await fixture(t)
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(10), '-i', 'eth1')).exitCode, 0)
  const before = await views(f)
  const r = await plumb('attach-veth', f.guest, f.br, f.v4(20), '-i', 'eth1')
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, /different configuration/)
  t.regex(r.stderr, /^hint: /m)
  t.deepEqual(await views(f), before)
})

asRoot('-i naming an interface in the guest that is not plumb\'s: exit 4, nothing changed', async (t) => {
  const f = await fixture(t)
  await foreignNic(t, f, 'eth1', f.v4(5))
  const before = await views(f)
  const r = await plumb('attach-veth', f.guest, f.br, f.v4(10), '-i', 'eth1')
  t.is(r.exitCode, 4, r.stderr)
  t.regex(r.stderr, /not plumb's/)
  t.deepEqual(await views(f), before)
  // without -i the foreign eth1 is skipped: eth2
  const ok = await plumb('attach-veth', f.guest, f.br, f.v4(10))
  t.is(ok.exitCode, 0, ok.stderr)
  t.truthy((await guestLinks(f.ns)).get('eth2'))
})

asRoot('rollback: a route whose gateway is unreachable fails after the veth exists, and everything is undone (the new bridge too)', async (t) => {
  const f = await fixture(t)
  const before = await views(f)
  const r = await plumb('attach-veth', f.guest, f.br, `${f.v4(10)}@${f.gw4}`, '--route', `198.19.0.0/16@198.18.${(f.octet + 1) % 256}.1`)
  t.is(r.exitCode, 1, 'failed and rolled back')
  t.regex(r.stderr, /^plumb: .*(ENETUNREACH|unreachable)/m)
  t.regex(r.stderr, /^rolled back: .*ip link del/m)
  t.is(await getLink(f.br), undefined, 'the bridge the op created is gone')
  t.deepEqual(await views(f), before)
})

asRoot('rollback through the library API: the PlumbError keeps its code and lists what was undone', async (t) => {
  const f = await fixture(t)
  await makeBridge(t, f.br)
  const before = await views(f)
  const err = await t.throwsAsync(
    attachVeth({ guest: f.guest, bridge: f.br, ips: [f.v4(10)], routes: [`198.19.0.0/16@198.18.${(f.octet + 1) % 256}.1`] }),
    { instanceOf: PlumbError },
  )
  t.is(err.exitCode, 1)
  t.true((err.rolledBack ?? []).some((l) => l.startsWith('ip link del pl')), JSON.stringify(err.rolledBack))
  t.truthy(await getLink(f.br), 'an existing bridge stays')
  t.deepEqual(await views(f), before)
})

asRoot('--dry-run prints ip lines and changes nothing', async (t) => {
  const f = await fixture(t)
  const before = await views(f)
  const r = await plumb('attach-veth', f.guest, f.br, `${f.v4(10)}@${f.gw4}`, `${f.v6(10)}`, '--dry-run')
  t.is(r.exitCode, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  t.true(lines.length >= 4, r.stdout)
  t.regex(r.stdout, new RegExp(`^ip link add ${f.br} .*type bridge`, 'm'))
  t.regex(r.stdout, /^ip link add pl\S+ .*type veth peer name eth1 netns /m)
  t.regex(r.stdout, new RegExp(`^ip -n ${f.ns} addr add ${f.v4(10).replace(/\./g, '\\.')} dev eth1$`, 'm'))
  t.regex(r.stdout, new RegExp(`^ip -n ${f.ns} route add default via ${f.gw4.replace(/\./g, '\\.')} dev eth1$`, 'm'))
  for (const l of lines) t.regex(l, /^(ip |iptables |ip6tables |nsenter |ip netns exec |# )/, l)
  // IPv6 turned on for eth1 (as Docker starts containers it is off) before its IPv6 address
  const on6 = lines.indexOf(`ip netns exec ${f.ns} sysctl -qw net.ipv6.conf.eth1.disable_ipv6=0`)
  t.true(on6 >= 0 && on6 < lines.findIndex((l) => l.includes(`addr add ${f.v6(10)}`)), r.stdout)
  t.deepEqual(await views(f), before)
  // --json --dry-run: the plan, changed false... and still nothing done
  const j = await plumb('attach-veth', f.guest, f.br, f.v4(10), '--dry-run', '--json')
  t.is(j.exitCode, 0)
  t.true(j.json.dryRun)
  t.true(j.json.plan.length > 0)
  t.false((j.json.plan as string[]).some((l) => l.includes('disable_ipv6')), 'IPv6 is left alone when no IPv6 address is asked for')
  t.deepEqual(await views(f), before)
})

asRoot('library API: attachVeth resolves to the CNI-shaped result and the kernel agrees', async (t) => {
  const f = await fixture(t)
  const r = await attachVeth({ guest: f.guest, bridge: f.br, ips: [`${f.v4(10)}@${f.gw4}`], mtu: 1450 })
  t.true(r.changed)
  const guestIf = r.interfaces.find((i) => i.netns === f.guest)!
  const eth = (await guestLinks(f.ns)).get(guestIf.name)!
  t.is(eth.address, guestIf.mac)
  t.is(eth.mtu, 1450)
  const hostIf = r.interfaces.find((i) => i.netns === 'host')!
  t.is((await ipJson(['link', 'show', hostIf.name]))[0]?.master, f.br)
})

// set-ip, detach and --replace-gateway on `ip netns` guests through the real CLI, read back from
// the kernel; detach's cleanup of host ends, plumb-made bridges and firewall rules included.

import { detach, setIp } from '../../lib/index.js'
import { getLink, ipJson, isRoot, makeBridge, sh, testIf } from '../helpers/index.js'
import { addrsOf, defaultRoutes, firewallRules, fixture, foreignNic, forwardDropActive, guestLinks, plumb, routesOf, views } from './ops-fixture.js'

const asRoot = testIf(isRoot, 'ops-setip-detach: needs root (ip netns, links)')

asRoot('set-ip: v4+v6 with gateways, idempotent re-run, --route add and --del, --del of addresses', async (t) => {
  const f = await fixture(t)
  t.is((await plumb('attach-veth', f.guest, f.br)).exitCode, 0)
  const add = ['set-ip', f.guest, 'eth1', `${f.v4(10)}@${f.gw4}`, `${f.v6(10)}@${f.gw6}`]
  const r = await plumb(...add)
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(await addrsOf('eth1', f.ns), [f.v4(10), f.v6(10)].sort())
  const defs = await defaultRoutes(f.ns)
  t.true(defs.some((d) => d.gateway === f.gw4 && d.dev === 'eth1'))
  t.true(defs.some((d) => d.gateway === f.gw6 && d.dev === 'eth1'))

  const before = await views(f)
  const again = await plumb(...add)
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already/)
  t.deepEqual(await views(f), before)

  const dst = `198.19.${f.octet}.0/24`
  const route = await plumb('set-ip', f.guest, 'eth1', '--route', `${dst}@198.18.${f.octet}.254`)
  t.is(route.exitCode, 0, route.stderr)
  t.true((await routesOf(f.ns)).some((x) => x.dst === dst && x.gateway === `198.18.${f.octet}.254` && x.dev === 'eth1'))
  const routeAgain = await plumb('set-ip', f.guest, 'eth1', '--route', `${dst}@198.18.${f.octet}.254`)
  t.is(routeAgain.exitCode, 0, routeAgain.stderr)
  const routeDel = await plumb('set-ip', f.guest, 'eth1', '--route', `${dst}@198.18.${f.octet}.254`, '--del')
  t.is(routeDel.exitCode, 0, routeDel.stderr)
  t.false((await routesOf(f.ns)).some((x) => x.dst === dst))

  const del = await plumb('set-ip', f.guest, 'eth1', `${f.v4(10)}@${f.gw4}`, '--del')
  t.is(del.exitCode, 0, del.stderr)
  t.deepEqual(await addrsOf('eth1', f.ns), [f.v6(10)])
  t.false((await defaultRoutes(f.ns)).some((d) => d.gateway === f.gw4))
  const delAgain = await plumb('set-ip', f.guest, 'eth1', f.v4(10), '--del')
  t.is(delAgain.exitCode, 0, delAgain.stderr)
  t.regex(delAgain.stdout, /already absent/)
})

asRoot('set-ip works on an interface plumb did not make; a missing interface is exit 3', async (t) => {
  const f = await fixture(t)
  await foreignNic(t, f, 'eth0')
  const r = await setIp({ guest: f.guest, ifname: 'eth0', ips: [f.v4(7)] })
  t.true(r.changed)
  t.deepEqual(await addrsOf('eth0', f.ns), [f.v4(7)])
  const before = await views(f)
  const missing = await plumb('set-ip', f.guest, 'eth9', f.v4(8))
  t.is(missing.exitCode, 3, missing.stderr)
  t.regex(missing.stderr, /^plumb: no interface "eth9"/m)
  t.regex(missing.stderr, /^hint: /m)
  t.deepEqual(await views(f), before)
})

asRoot('detach one interface, then --all: host ends, the plumb-made bridge and its firewall rule go; a second detach is exit 0', async (t) => {
  const f = await fixture(t)
  const a = await plumb('attach-veth', f.guest, f.br, f.v4(10), '--json')
  const b = await plumb('attach-veth', f.guest, f.br, f.v4(11), '--json')
  t.is(a.exitCode, 0, a.stderr)
  t.is(b.exitCode, 0, b.stderr)
  const hostA = a.json.interfaces.find((i: { netns: string }) => i.netns === 'host').name as string
  const hostB = b.json.interfaces.find((i: { netns: string }) => i.netns === 'host').name as string
  const drop = await forwardDropActive()
  if (drop) t.is((await firewallRules('iptables', f.br)).length, 1)

  const one = await plumb('detach', f.guest, 'eth1')
  t.is(one.exitCode, 0, one.stderr)
  const links = await guestLinks(f.ns)
  t.false(links.has('eth1'))
  t.true(links.has('eth2'))
  t.is(await getLink(hostA), undefined)
  t.is((await getLink(hostB))?.master, f.br)
  t.truthy(await getLink(f.br), 'the bridge stays while it has a plumb port')
  if (drop) t.is((await firewallRules('iptables', f.br)).length, 1, 'the rule stays while the bridge has a plumb port')

  const all = await plumb('detach', f.guest, '--all')
  t.is(all.exitCode, 0, all.stderr)
  t.deepEqual([...(await guestLinks(f.ns)).keys()], ['lo'])
  t.is(await getLink(hostB), undefined)
  t.is(await getLink(f.br), undefined, 'plumb made the bridge and it is empty: deleted')
  t.deepEqual(await firewallRules('iptables', f.br), [])
  t.deepEqual(await firewallRules('ip6tables', f.br), [])

  const before = await views(f)
  for (const args of [['detach', f.guest, '--all'], ['detach', f.guest, 'eth1']]) {
    const again = await plumb(...args)
    t.is(again.exitCode, 0, again.stderr)
    t.regex(again.stdout, /nothing to detach/)
  }
  t.deepEqual(await views(f), before)
})

asRoot('detach keeps a bridge plumb did not make (but removes plumb\'s rule for it) and never deletes a foreign interface', async (t) => {
  const f = await fixture(t)
  await makeBridge(t, f.br)
  await foreignNic(t, f, 'eth0', f.v4(5))
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(10))).exitCode, 0)

  const before = await views(f)
  const foreign = await plumb('detach', f.guest, 'eth0')
  t.is(foreign.exitCode, 4, foreign.stderr)
  t.regex(foreign.stderr, /not plumb's/)
  t.deepEqual(await views(f), before)

  const r = await detach({ guest: f.guest, all: true })
  t.true(r.changed)
  const links = await guestLinks(f.ns)
  t.true(links.has('eth0'), 'the foreign eth0 is left alone by --all')
  t.false(links.has('eth1'))
  t.deepEqual(await addrsOf('eth0', f.ns), [f.v4(5)])
  const br = await getLink(f.br)
  t.truthy(br, 'a bridge plumb did not make stays')
  t.true((br?.flags ?? []).includes('UP'))
  t.deepEqual(await firewallRules('iptables', f.br), [])
})

asRoot('--replace-gateway: refused without it (exit 4), replaces with it, and detach restores the old default route', async (t) => {
  const f = await fixture(t)
  const o2 = (f.octet + 1) % 256
  await foreignNic(t, f, 'eth0', f.v4(5))
  const oldGw = `198.18.${f.octet}.254`
  await sh('ip', ['-n', f.ns, 'route', 'add', 'default', 'via', oldGw, 'dev', 'eth0'])
  const spec = `198.18.${o2}.10/24@198.18.${o2}.1`

  const before = await views(f)
  const refused = await plumb('attach-veth', f.guest, f.br, spec)
  t.is(refused.exitCode, 4, refused.stderr)
  t.regex(refused.stderr, /default route/)
  t.regex(refused.stderr, /^hint: .*--replace-gateway/m)
  t.deepEqual(await views(f), before)

  const ok = await plumb('attach-veth', f.guest, f.br, spec, '--replace-gateway')
  t.is(ok.exitCode, 0, ok.stderr)
  t.deepEqual(
    (await defaultRoutes(f.ns)).map((d) => [d.gateway, d.dev]),
    [[`198.18.${o2}.1`, 'eth1']],
  )
  // idempotent re-run with the flag
  t.is((await plumb('attach-veth', f.guest, f.br, spec, '--replace-gateway')).exitCode, 0)

  const d = await plumb('detach', f.guest, 'eth1')
  t.is(d.exitCode, 0, d.stderr)
  t.regex(d.stdout, /restored the IPv4 default route/)
  t.deepEqual((await defaultRoutes(f.ns)).map((r) => [r.gateway, r.dev]), [[oldGw, 'eth0']])
  t.deepEqual(await views(f), before)
})

asRoot('detach --dry-run prints the plan and removes nothing', async (t) => {
  const f = await fixture(t)
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(10))).exitCode, 0)
  const before = await views(f)
  const r = await plumb('detach', f.guest, '--all', '--dry-run')
  t.is(r.exitCode, 0, r.stderr)
  t.regex(r.stdout, new RegExp(`^ip -n ${f.ns} link del eth1$`, 'm'))
  t.deepEqual(await views(f), before)
  t.is((await ipJson(['link', 'show', 'eth1'], f.ns)).length, 1)
})

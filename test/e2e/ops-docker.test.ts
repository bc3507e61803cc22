// The ops on real `docker run --net=none` containers: connectivity through a plumb bridge under
// Docker's FORWARD DROP, ls, detach leaving nothing, parallel attaches, refused guests, rollback.

import { attachVeth, PlumbError } from '../../lib/index.js'
import { assertTraffic, getLink, hasDocker, ipJson, isRoot, makeContainer, ping, sh, snapshot, stopContainer, testIf, uniq, reserveOctet } from '../helpers/index.js'
import type { Teardown } from '../helpers/index.js'
import { firewallRules, forwardDropActive, hostView, plumb, stable, sweepHost } from '../integration/ops-fixture.js'

const withDocker = testIf(isRoot && hasDocker(), 'ops-docker: needs root and dockerd with plumb-test:busybox (scripts/testbed.sh up)')

/** A test id whose sweep runs at teardown (registered before anything is made), and an address block. */
function ids(t: Teardown): { id: string; br: string; net: string } {
  const octet = reserveOctet(t) // first: its teardown runs last
  const id = uniq()
  t.teardown(() => sweepHost(id))
  return { id, br: `${id}b`, net: `198.18.${octet}` }
}

/** Names of the links inside a container's netns. */
async function linksIn(sandboxKey: string): Promise<string[]> {
  return (await ipJson(['link', 'show'], { path: sandboxKey })).map((l) => String(l.ifname)).sort()
}

/** Host links carrying plumb's mark for this container. */
async function hostEndsOf(name: string): Promise<string[]> {
  return (await ipJson(['-d', 'link', 'show'])).filter((l) => String(l.ifalias ?? '').includes(`guest=docker:${name} `) || String(l.ifalias ?? '').endsWith(`guest=docker:${name}`)).map((l) => String(l.ifname))
}

withDocker('two containers on one new bridge carry TCP, UDP and ping through FORWARD DROP; ls shows both; detach --all leaves nothing', async (t) => {
  const { id, br, net } = ids(t)
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}c` })])
  const ra = await plumb('attach-veth', a.name, br, `${net}.10/24`)
  const rb = await plumb('attach-veth', b.name, br, `${net}.11/24`)
  t.is(ra.exitCode, 0, ra.stderr)
  t.is(rb.exitCode, 0, rb.stderr)

  const drop = await forwardDropActive()
  if (drop) t.is((await firewallRules('iptables', br)).length, 1, 'one ACCEPT rule for the bridge while attached')
  await assertTraffic(t, { path: a.sandboxKey }, { path: b.sandboxKey }, `${net}.11`, 'a -> b')
  await assertTraffic(t, { path: b.sandboxKey }, { path: a.sandboxKey }, `${net}.10`, 'b -> a')

  const again = await plumb('attach-veth', a.name, br, `${net}.10/24`)
  t.is(again.exitCode, 0, again.stderr)
  t.regex(again.stdout, /already/)

  const ls = await plumb('ls', '--json')
  t.is(ls.exitCode, 0, ls.stderr)
  for (const [c, addr] of [[a, `${net}.10/24`], [b, `${net}.11/24`]] as const) {
    const g = ls.json.guests.find((x: { guest: string }) => x.guest === `docker:${c.name}`)
    t.truthy(g, `ls lists docker:${c.name}`)
    t.deepEqual(g?.interfaces.map((i: { name: string; addresses: string[]; bridge: string }) => [i.name, i.addresses, i.bridge]), [['eth1', [addr], br]])
  }
  const human = await plumb('ls')
  t.regex(human.stdout, new RegExp(`^docker:${a.name}$`, 'm'))
  t.regex(human.stdout, new RegExp(`^docker:${b.name}$`, 'm'))

  for (const c of [a, b]) {
    const d = await plumb('detach', c.name, '--all')
    t.is(d.exitCode, 0, d.stderr)
    t.deepEqual(await linksIn(c.sandboxKey), ['lo'], `only lo left in ${c.name}`)
    t.deepEqual(await hostEndsOf(c.name), [], `no host end of ${c.name}`)
  }
  t.is(await getLink(br), undefined, 'the bridge plumb made is gone')
  t.deepEqual(await firewallRules('iptables', br), [])
  t.deepEqual(await firewallRules('ip6tables', br), [])
  t.deepEqual((await hostView(id)).links, [])
})

withDocker('ten parallel attaches to one container all succeed with distinct eth1..eth10 and host ends', async (t) => {
  const { id, br, net } = ids(t)
  const c = await makeContainer(t, { name: `${id}p` })
  const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => plumb('attach-veth', c.name, br, `${net}.${20 + i}/24`, '--json')))
  for (const r of rs) t.is(r.exitCode, 0, r.stderr)
  const guestNames = rs.map((r) => r.json.interfaces.find((i: { netns: string }) => i.netns !== 'host').name as string)
  const hostNames = rs.map((r) => r.json.interfaces.find((i: { netns: string }) => i.netns === 'host').name as string)
  t.deepEqual([...guestNames].sort(), Array.from({ length: 10 }, (_, i) => `eth${i + 1}`).sort())
  t.is(new Set(hostNames).size, 10)
  // the kernel agrees: ten plumb interfaces, each with its own address
  const addrs = await ipJson(['-4', 'addr', 'show'], { path: c.sandboxKey })
  const byIf = new Map(addrs.map((a) => [String(a.ifname), (a.addr_info as Array<{ local: string }>).map((x) => x.local)]))
  for (let i = 1; i <= 10; i++) t.is(byIf.get(`eth${i}`)?.length, 1, `eth${i} has one address`)
  t.is(new Set([...byIf.values()].flat()).size, byIf.size)
  for (const h of hostNames) {
    const l = await getLink(h)
    t.is(l?.master, br, `${h}: ${JSON.stringify(l)}; the ten results: ${JSON.stringify(rs.map((r) => r.json.interfaces))}`)
  }
  // all ten found the new bridge without a rule: still exactly one copy is inserted
  if (await forwardDropActive()) t.is((await firewallRules('iptables', br)).length, 1)

  const d = await plumb('detach', c.name, '--all')
  t.is(d.exitCode, 0, d.stderr)
  t.deepEqual(await linksIn(c.sandboxKey), ['lo'])
  t.is(await getLink(br), undefined)
  t.deepEqual(await firewallRules('iptables', br), [])
})

withDocker('ten attaches to ten containers at once all succeed', async (t) => {
  const { id, br, net } = ids(t)
  const cs = await Promise.all(Array.from({ length: 10 }, (_, i) => makeContainer(t, { name: `${id}-${i}` })))
  const rs = await Promise.all(cs.map((c, i) => plumb('attach-veth', c.name, br, `${net}.${30 + i}/24`)))
  for (const r of rs) t.is(r.exitCode, 0, r.stderr)
  for (const [i, c] of cs.entries()) {
    const a = await ipJson(['-4', 'addr', 'show', 'dev', 'eth1'], { path: c.sandboxKey })
    t.is(a[0]?.addr_info?.[0]?.local, `${net}.${30 + i}`)
  }
  const ports = (await ipJson(['link', 'show', 'master', br])).length
  t.is(ports, 10)
  t.true(await ping({ path: cs[0]!.sandboxKey }, `${net}.39`), 'first reaches last')
  const ds = await Promise.all(cs.map((c) => plumb('detach', c.name, '--all')))
  for (const d of ds) t.is(d.exitCode, 0, d.stderr)
  t.is(await getLink(br), undefined, 'the last detach removed the bridge')
  t.deepEqual(await firewallRules('iptables', br), [])
})

withDocker('a stopped container is exit 3 at once; a --net=host container is exit 4', async (t) => {
  const { id, br, net } = ids(t)
  const stopped = await makeContainer(t, { name: `${id}s` })
  await stopContainer(stopped.name)
  const r = await plumb('attach-veth', stopped.name, br, `${net}.10/24`)
  t.is(r.exitCode, 3, r.stderr)
  t.regex(r.stderr, /not running/)
  // timed in-process: a CLI's start-up on a loaded machine would dominate the measurement
  const started = performance.now()
  const err = await t.throwsAsync(attachVeth({ guest: stopped.name, bridge: br, ips: [`${net}.10/24`] }), { instanceOf: PlumbError })
  t.is(err.exitCode, 3)
  t.true(performance.now() - started < 1500, `no retry loop (${(performance.now() - started).toFixed(0)} ms)`)

  const hostNet = await makeContainer(t, { name: `${id}h`, net: 'host' })
  const h = await plumb('attach-veth', hostNet.name, br, `${net}.11/24`)
  t.is(h.exitCode, 4, h.stderr)
  t.regex(h.stderr, /--allow-host/)
  t.is(await getLink(br), undefined, 'nothing was made for either')
  // (--allow-host is not exercised: it would plumb the real host)
})

withDocker('a failure part-way on a container leaves nothing on the host or in its netns', async (t) => {
  const { id, br, net } = ids(t)
  const c = await makeContainer(t, { name: `${id}f` })
  const guestBefore = stable(await snapshot({ path: c.sandboxKey }))
  const hostBefore = await hostView(id)
  const other = net.replace(/\d+$/, (o) => String((Number(o) + 1) % 256))
  const r = await plumb('attach-veth', c.name, br, `${net}.10/24@${net}.1`, '--route', `198.19.0.0/16@${other}.1`)
  t.is(r.exitCode, 1, r.stderr)
  t.regex(r.stderr, /^rolled back: /m)
  t.deepEqual(stable(await snapshot({ path: c.sandboxKey })), guestBefore)
  t.deepEqual(await hostView(id), hostBefore)
  t.is(await getLink(br), undefined)
  t.deepEqual(await hostEndsOf(c.name), [])
  // and the container still works for a good attach afterwards
  t.is((await plumb('attach-veth', c.name, br, `${net}.10/24`)).exitCode, 0)
  t.deepEqual((await sh('docker', ['exec', c.name, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth1'])).match(/inet (\S+)/)?.[1], `${net}.10/24`)
})

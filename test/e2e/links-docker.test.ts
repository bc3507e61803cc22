// The link menu on real `docker run --net=none` containers: OVS VLAN isolation across four
// containers, p2p links (container<->container, container<->host), macvlan, move-dev, and gc
// after a container with an OVS port and a bridge port is stopped.

import { assertTraffic, getLink, hasDocker, hasOvs, ipJson, isRoot, makeContainer, ping, sh, shQuiet, stopContainer, testIf, uniq, waitFor, holdGcLock, reserveOctet } from '../helpers/index.js'
import type { Teardown } from '../helpers/index.js'
import { firewallRules, forwardDropActive, plumb, sweepHost } from '../integration/ops-fixture.js'
import { ovsPortsOf } from '../integration/links-fixture.js'

const withDocker = testIf(isRoot && hasDocker(), 'links-docker: needs root and dockerd with plumb-test:busybox (scripts/testbed.sh up)')
const withDockerOvs = testIf(isRoot && hasDocker() && hasOvs(), 'links-docker: needs root, dockerd with plumb-test:busybox and Open vSwitch')

function ids(t: Teardown): { id: string; net: string } {
  const octet = reserveOctet(t) // first: its teardown runs last
  const id = uniq()
  t.teardown(() => sweepHost(id))
  return { id, net: `198.18.${octet}` }
}

async function ovsBridge(t: Teardown, name: string): Promise<void> {
  t.teardown(async () => void (await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', name])))
  await sh('ovs-vsctl', ['--timeout=10', 'add-br', name, '--', 'set', 'bridge', name, 'datapath_type=netdev'])
}

const namesIn = async (sandboxKey: string): Promise<string[]> => (await ipJson(['link', 'show'], { path: sandboxKey })).map((l) => String(l.ifname)).sort()

withDockerOvs('four containers on one OVS bridge, two on tag 10 and two on tag 20: same-tag pairs carry TCP, UDP and ping, cross-tag pairs do not ping; detach removes the rows', async (t) => {
  const { id, net } = ids(t)
  const br = `${id}o`
  await ovsBridge(t, br)
  const cs = await Promise.all(['a', 'b', 'c', 'd'].map((s) => makeContainer(t, { name: `${id}${s}` })))
  const tags = ['10', '10', '20', '20']
  // two through ovs-port --tag, two through attach-veth --vlan (OVS detected) / vlan
  const rs = [
    await plumb('ovs-port', cs[0]!.name, br, `${net}.10/24`, '--tag', tags[0]!),
    await plumb('attach-veth', cs[1]!.name, br, `${net}.11/24`, '--vlan', tags[1]!),
    await plumb('vlan', cs[2]!.name, br, tags[2]!, `${net}.12/24`),
    await plumb('ovs-port', cs[3]!.name, br, `${net}.13/24`, '--tag', tags[3]!),
  ]
  for (const r of rs) t.is(r.exitCode, 0, r.stderr)
  const ports = await ovsPortsOf(id)
  for (const [i, c] of cs.entries()) {
    const p = ports.find((x) => x.externalIds['plumb-guest'] === `docker:${c.name}`)
    t.is(p?.tag, Number(tags[i]), `docker:${c.name} on tag ${tags[i]}`)
    t.is(p?.bridge, br)
  }
  const at = (i: number): { path: string } => ({ path: cs[i]!.sandboxKey })
  // TCP and UDP as well as ping: the userspace datapath carried ping while it dropped them
  await assertTraffic(t, at(0), at(1), `${net}.11`, 'tag 10: ovs-port -> attach-veth --vlan')
  await assertTraffic(t, at(1), at(0), `${net}.10`, 'tag 10: attach-veth --vlan -> ovs-port')
  await assertTraffic(t, at(2), at(3), `${net}.13`, 'tag 20: vlan -> ovs-port')
  await assertTraffic(t, at(3), at(2), `${net}.12`, 'tag 20: ovs-port -> vlan')
  const cross = await Promise.all([
    ping(at(0), `${net}.12`, { count: 1, timeout: 1 }),
    ping(at(1), `${net}.13`, { count: 1, timeout: 1 }),
    ping(at(2), `${net}.10`, { count: 1, timeout: 1 }),
    ping(at(3), `${net}.11`, { count: 1, timeout: 1 }),
  ])
  t.deepEqual(cross, [false, false, false, false])

  const ls = await plumb('ls', '--json')
  for (const c of cs) {
    const g = ls.json.guests.find((x: { guest: string }) => x.guest === `docker:${c.name}`)
    t.is(g?.interfaces[0]?.bridge, br)
  }
  for (const c of cs) t.is((await plumb('detach', c.name, '--all')).exitCode, 0)
  t.deepEqual(await ovsPortsOf(id), [])
  for (const c of cs) t.deepEqual(await namesIn(c.sandboxKey), ['lo'])
})

withDocker('p2p-link: two containers carry TCP, UDP and ping over a direct link with no bridge; a container and the host too, over /32 + peer routes', async (t) => {
  const { id, net } = ids(t)
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` })])
  const r = await plumb('p2p-link', a.name, b.name, '--ip-a', `${net}.0/31`, '--ip-b', `${net}.1/31`)
  t.is(r.exitCode, 0, r.stderr)
  await assertTraffic(t, { path: a.sandboxKey }, { path: b.sandboxKey }, `${net}.1`, 'a -> b')
  await assertTraffic(t, { path: b.sandboxKey }, { path: a.sandboxKey }, `${net}.0`, 'b -> a')
  const ls = await plumb('ls', b.name, '--json')
  t.like(ls.json.guests[0].interfaces[0], { name: 'eth1', op: 'p2p-link', peerGuest: `docker:${a.name}` })

  const hostIf = `${id}h`
  const h = await plumb('p2p-link', a.name, 'host', '--ip-a', `${net}.66/32`, '--ip-b', `${net}.65/32`, '--ifname-b', hostIf)
  t.is(h.exitCode, 0, h.stderr)
  await assertTraffic(t, undefined, { path: a.sandboxKey }, `${net}.66`, 'the host -> the container')
  await assertTraffic(t, { path: a.sandboxKey }, undefined, `${net}.65`, 'the container -> the host')

  t.is((await plumb('detach', a.name, '--all')).exitCode, 0)
  t.deepEqual(await namesIn(a.sandboxKey), ['lo'])
  t.deepEqual(await namesIn(b.sandboxKey), ['lo'], "b's end went with a's")
  t.is(await getLink(hostIf), undefined)
})

withDocker('macvlan into two containers on a veth "NIC": TCP, UDP and ping to each other and the far end; move-dev gives a container a NIC and detach gives it back', async (t) => {
  const { id, net } = ids(t)
  const nic = `${id}p`
  const far = `${id}q`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', nic])))
  await sh('ip', ['link', 'add', nic, 'type', 'veth', 'peer', 'name', far])
  await sh('ip', ['link', 'set', nic, 'up'])
  const [a, b, c] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` }), makeContainer(t, { name: `${id}c` })])
  // the far end goes into container c: "the LAN" (move-dev, which is under test too)
  const mv = await plumb('move-dev', c.name, far, `${net}.1/24`, '-i', 'lan0')
  t.is(mv.exitCode, 0, mv.stderr)
  t.deepEqual(await namesIn(c.sandboxKey), ['lan0', 'lo'])
  for (const [x, h] of [[a, 10], [b, 11]] as const) {
    const r = await plumb('macvlan', x.name, nic, `${net}.${h}/24`)
    t.is(r.exitCode, 0, r.stderr)
  }
  await assertTraffic(t, { path: a.sandboxKey }, { path: b.sandboxKey }, `${net}.11`, 'macvlan a -> b')
  await assertTraffic(t, { path: a.sandboxKey }, { path: c.sandboxKey }, `${net}.1`, 'macvlan a -> the far end (move-dev)')
  await assertTraffic(t, { path: c.sandboxKey }, { path: b.sandboxKey }, `${net}.11`, 'the far end (move-dev) -> macvlan b')

  const d = await plumb('detach', c.name, 'lan0')
  t.is(d.exitCode, 0, d.stderr)
  t.truthy(await getLink(far), 'the moved device is back on the host under its name')
  t.deepEqual(await namesIn(c.sandboxKey), ['lo'])
})

withDockerOvs('gc after a container with an OVS port and a bridge port is stopped: OVS and the host are clean', async (t) => {
  await holdGcLock(t)
  const { id, net } = ids(t)
  const obr = `${id}o`
  const lbr = `${id}b`
  await ovsBridge(t, obr)
  const c = await makeContainer(t, { name: `${id}g` })
  t.is((await plumb('ovs-port', c.name, obr, `${net}.10/24`, '--tag', '10')).exitCode, 0)
  t.is((await plumb('attach-veth', c.name, lbr, `${net}.20/24`)).exitCode, 0)
  if (await forwardDropActive()) t.is((await firewallRules('iptables', lbr)).length, 1)
  const [port] = await ovsPortsOf(id)
  t.truthy(port)

  await stopContainer(c.name)
  await waitFor(async () => (await getLink(port!.name)) === undefined, { what: 'the host ends to die with the container' })
  t.is((await ovsPortsOf(id)).length, 1, 'the OVS row outlives its interface')

  const g = await plumb('gc')
  t.is(g.exitCode, 0, g.stderr)
  t.deepEqual(await ovsPortsOf(id), [], 'no stale OVS row')
  t.is(await getLink(lbr), undefined, 'the plumb bridge is gone')
  t.deepEqual(await firewallRules('iptables', lbr), [])
  const left = (await ipJson(['-d', 'link', 'show'])).filter((l) => String(l.ifalias ?? '').includes(`docker:${c.name}`))
  t.deepEqual(left, [], 'no host end marked for the container')
  const again = await plumb('gc', '--json')
  t.is(again.exitCode, 0, again.stderr)
  t.false(JSON.stringify(again.json.plan).includes(id))
})

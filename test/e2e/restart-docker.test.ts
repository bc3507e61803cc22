// Surviving restarts on real `docker run --net=none` containers: what plumb did (attach-veth,
// ovs-port, macvlan, p2p-link to a container and to the host, a DHCP lease from a real dnsmasq,
// names, sysctl) comes back after `docker restart` with the same names, MACs, addresses, routes,
// host ends and lease, read back from the kernel, OVS and the server, and carries ping, TCP and
// UDP again. Also: the old netns kept alive across the restart (its veths linger under the same
// names), a detach that is not replayed, a p2p link made when its second container starts, and
// records an older plumb or a newer one wrote.

import { readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { TEST_IMAGE, assertTraffic, cmdlineOf, holdGcLock, httpGet, makeBridge, runCli, shIn, hasBinary, hasDocker, hasOvs, inspectContainer, ipJson, isRoot, makeContainer, processAlive, sh, shQuiet, spawnIn, startEcho, testIf, udpAsk, waitFor } from '../helpers/index.js'
import type { TestContainer } from '../helpers/index.js'
import { makeHostDhcpLab } from '../integration/ops-dhcp-fixture.js'
import { interfacesOf, recordsIn, restartLab, restarted, routesOf } from './restart-fixture.js'
import { labFixture } from './lab-fixture.js'
import { dropEmptyPlumbChains } from '../integration/ops-fixture.js'

const ready = isRoot && hasDocker() && hasOvs()
const withAll = testIf(ready && hasBinary('dnsmasq') && hasBinary('udhcpc'), 'restart-docker: needs root, dockerd with plumb-test:busybox, Open vSwitch, dnsmasq and udhcpc')
const withDocker = testIf(isRoot && hasDocker(), 'restart-docker: needs root and dockerd with plumb-test:busybox')

const at = (c: TestContainer): { path: string } => ({ path: c.sandboxKey })

/** The OVS port row of a host end: its tag and OpenFlow port. */
async function ovsPort(name: string): Promise<{ tag: number | undefined; ofport: number }> {
  const tag = await sh('ovs-vsctl', ['--timeout=5', 'get', 'Port', name, 'tag'])
  const ofport = await sh('ovs-vsctl', ['--timeout=5', 'get', 'Interface', name, 'ofport'])
  return { tag: tag === '[]' ? undefined : Number(tag), ofport: Number(ofport) }
}

withAll('docker restart: attach-veth, ovs-port, macvlan, p2p to a container and to the host, DHCP, names and sysctl all come back with the same names, MACs, addresses, routes, host ends and lease; ping, TCP and UDP pass on each', async (t) => {
  // it checks that the OVS row the restart left is there for the replay to delete: no gc meanwhile
  await holdGcLock(t)
  const lab = restartLab(t)
  const { id, plumb } = lab
  const dhcpLab = await makeHostDhcpLab(t)
  const [brNet, ovsNet, mvNet, p2pNet, hostNet] = [lab.net(), lab.net(), lab.net(), lab.net(), lab.net()]
  const br = `${id}L`
  const ovs = `${id}O`
  const nic = `${id}N`
  const hostIf = `${id}H`
  t.teardown(async () => void (await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', ovs])))
  await sh('ovs-vsctl', ['--timeout=10', 'add-br', ovs, '--', 'set', 'bridge', ovs, 'datapath_type=netdev'])
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', nic])))
  await sh('ip', ['link', 'add', nic, 'type', 'veth', 'peer', 'name', `${id}F`])
  await sh('ip', ['link', 'set', nic, 'up'])
  await sh('ip', ['link', 'set', `${id}F`, 'up']) // a veth has carrier only with both ends up
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` })])

  const steps: string[][] = [
    // (no @gateway: the DHCP lease below brings the default route)
    ['attach-veth', a.name, br, `${brNet}.10/24`, '--route', `198.19.0.0/16@${brNet}.254`],
    ['attach-veth', b.name, br, `${brNet}.11/24`],
    ['ovs-port', a.name, ovs, `${ovsNet}.10/24`, '--tag', '10'],
    ['ovs-port', b.name, ovs, `${ovsNet}.11/24`, '--tag', '10'],
    ['macvlan', a.name, nic, `${mvNet}.10/24`, '-i', 'lan0'],
    ['macvlan', b.name, nic, `${mvNet}.11/24`, '-i', 'lan0'],
    ['p2p-link', a.name, b.name, '--ip-a', `${p2pNet}.0/31`, '--ip-b', `${p2pNet}.1/31`],
    ['p2p-link', a.name, 'host', '--ip-a', `${hostNet}.2/32`, '--ip-b', `${hostNet}.1/32`, '--ifname-b', hostIf],
    ['attach-veth', a.name, dhcpLab.br, 'dhcp', '-i', 'dhcp0'],
    ['names', a.name, '--add-host', `db:${brNet}.11`],
    ['sysctl', a.name, 'net.ipv4.conf.lan0.arp_ignore=1'],
  ]
  for (const s of steps) {
    const r = await plumb(...s)
    t.is(r.exitCode, 0, `${s.join(' ')}: ${r.stderr}`)
  }
  const lease1 = (await plumb('ls', a.name, '--json')).json.guests[0].interfaces.find((i: { name: string }) => i.name === 'dhcp0').lease
  t.truthy(lease1?.address, 'a DHCP lease before the restart')
  const before = { ifs: await interfacesOf(a), routes: await routesOf(a) }
  const hostEnds = (await ipJson(['-d', 'link', 'show'])).filter((l) => String(l.ifalias ?? '').includes(`guest=docker:${a.name} `)).map((l) => String(l.ifname)).sort()
  t.is(hostEnds.length, 4, `a's host ends (bridge, OVS, DHCP bridge, p2p to the host): ${hostEnds}`)
  const ovsEnd = (await ipJson(['-d', 'link', 'show'])).find((l) => String(l.ifalias ?? '').includes(`guest=docker:${a.name} `) && String(l.ifalias).includes('op=ovs-port'))!.ifname as string

  const records = recordsIn(lab.records)
  t.deepEqual(Object.values(records).find((r) => r.name === a.name)?.entries.map((e) => e.op), ['attach-veth', 'ovs-port', 'macvlan', 'p2p-link', 'p2p-link', 'attach-veth', 'names', 'sysctl'])
  t.deepEqual(Object.values(records).find((r) => r.name === b.name)?.entries.map((e) => e.op), ['attach-veth', 'ovs-port', 'macvlan', 'p2p-link'])

  await sh('docker', ['restart', '-t', '0', a.name])
  const a2 = await restarted(a)
  t.deepEqual(Object.keys(await interfacesOf(a2)), [], 'a restart leaves the container nothing of plumb')
  // At once: the old netns's DHCP supervisor is still there for a second, its client keeping
  // the old netns (and so the old veths and their host ends) alive under the same names.
  const r = await plumb('replay', a.name, '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(
    r.json.entries.map((e: { op: string; ifname?: string; outcome: string }) => `${e.ifname ?? '-'} ${e.op} ${e.outcome}`),
    ['eth1 attach-veth made', 'eth2 ovs-port made', 'lan0 macvlan made', 'eth3 p2p-link made', 'eth4 p2p-link made', 'dhcp0 attach-veth made', '- names made', '- sysctl made'],
  )

  t.true(r.json.plan.includes(`ovs-vsctl --if-exists del-port ${ovsEnd}`), "the OVS row left behind is deleted before the port is added again")
  const after = { ifs: await interfacesOf(a2), routes: await routesOf(a2) }
  // the lease's address is the same one (same MAC, same lease), but its lifetime is new
  t.deepEqual(after.ifs, before.ifs, 'same names, MACs, MTUs, states and addresses')
  t.deepEqual(after.routes, before.routes, 'same routes')
  const hostEnds2 = (await ipJson(['-d', 'link', 'show'])).filter((l) => String(l.ifalias ?? '').includes(`guest=docker:${a.name} `)).map((l) => String(l.ifname)).sort()
  t.deepEqual(hostEnds2, hostEnds, 'the same host ends, and no other')
  const port = await ovsPort(ovsEnd)
  t.is(port.tag, 10)
  t.true(port.ofport > 0, `ovs-vswitchd opened the port (ofport ${port.ofport})`)

  const lease2 = (await plumb('ls', a.name, '--json')).json.guests[0].interfaces.find((i: { name: string }) => i.name === 'dhcp0').lease
  t.is(lease2?.address, lease1.address, 'the same DHCP lease')
  t.true(processAlive(lease2.pid) && processAlive(lease2.clientPid), 'its supervisor and client run')
  t.is(netnsOf(lease2.clientPid), netnsOf(a2.pid), "the client runs in the container's new netns")
  t.regex(await sh('docker', ['exec', a.name, 'cat', '/etc/hosts']), new RegExp(`^${brNet.replaceAll('.', '\\.')}\\.11\\s+db\\s+# plumb$`, 'm'), 'names: the /etc/hosts line is back')
  t.is(await shIn(at(a2), 'cat', ['/proc/sys/net/ipv4/conf/lan0/arp_ignore']), '1', 'sysctl: back')

  await assertTraffic(t, at(a2), at(b), `${brNet}.11`, 'the Linux bridge')
  await assertTraffic(t, at(b), at(a2), `${ovsNet}.10`, 'the OVS port, tag 10 (a row deleted and made anew)')
  await assertTraffic(t, at(a2), at(b), `${mvNet}.11`, 'macvlan')
  await assertTraffic(t, at(b), at(a2), `${p2pNet}.0`, 'the p2p link to b')
  await assertTraffic(t, undefined, at(a2), `${hostNet}.2`, 'the p2p link to the host')
  await assertTraffic(t, at(a2), dhcpLab.srvNs, `${dhcpLab.net}.1`, 'the DHCP network')

  const again = await plumb('replay', a.name, '--json')
  t.is(again.exitCode, 0, again.stderr)
  t.false(again.json.changed, 'a second replay changes nothing')
  t.true(again.json.entries.every((e: { outcome: string }) => e.outcome === 'already'))
})

withDocker('the old netns kept alive across a restart (a process still in it): its veths linger under the same names, and replay removes them first and carries traffic', async (t) => {
  const lab = restartLab(t)
  const { id, plumb } = lab
  const [brNet, p2pNet] = [lab.net(), lab.net()]
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` })])
  for (const s of [
    ['attach-veth', a.name, `${id}L`, `${brNet}.10/24`],
    ['attach-veth', b.name, `${id}L`, `${brNet}.11/24`],
    ['p2p-link', b.name, a.name, '--ip-a', `${p2pNet}.1/31`, '--ip-b', `${p2pNet}.0/31`],
  ]) {
    const r = await plumb(...s)
    t.is(r.exitCode, 0, r.stderr)
  }
  const oldNetns = netnsOf(a.pid)
  // a process of the host in a's netns: the netns outlives the container's restart while it runs
  const holder = spawnIn(t, { pid: a.pid }, 'sleep', ['600'])
  await waitFor(() => netnsOf(holder.pid) === oldNetns && cmdlineOf(holder.pid!).startsWith('sleep'), { what: 'the holder to be in the old netns' })

  await sh('docker', ['restart', '-t', '0', a.name])
  const a2 = await restarted(a)
  const hostEnd = (await ipJson(['-d', 'link', 'show'])).find((l) => String(l.ifalias ?? '').includes(`guest=docker:${a.name} `))
  t.truthy(hostEnd, "the old eth1's host end lingers")
  const bLinks = (await ipJson(['link', 'show'], at(b))).map((l) => String(l.ifname))
  t.true(bLinks.includes('eth2'), "b's end of the old p2p link lingers")

  const r = await plumb('replay', a.name, '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.is(r.json.cleared.length, 2, `two leftovers removed first: ${JSON.stringify(r.json.cleared)}`)
  t.deepEqual(r.json.entries.map((e: { outcome: string }) => e.outcome), ['made', 'made'])
  await assertTraffic(t, at(b), at(a2), `${brNet}.10`, 'the bridge, to the new netns')
  await assertTraffic(t, at(b), at(a2), `${p2pNet}.0`, 'the p2p link, to the new netns')
  const inOld = (await ipJson(['link', 'show'], { pid: holder.pid! })).map((l) => String(l.ifname))
  t.deepEqual(inOld, ['lo'], 'nothing of plumb is left in the old netns')
})

/** The netns a process is in (`net:[INODE]`), or undefined once it is gone. */
function netnsOf(pid: number | undefined): string | undefined {
  try {
    return pid === undefined ? undefined : readlinkSync(`/proc/${pid}/ns/net`)
  } catch {
    return undefined
  }
}

withDocker('detach: what it removed leaves the record and is not replayed; set-ip --del takes its addresses out of the record the same way', async (t) => {
  const lab = restartLab(t)
  const { id, plumb } = lab
  const net = lab.net()
  const a = await makeContainer(t, { name: `${id}a` })
  for (const s of [
    ['attach-veth', a.name, `${id}L`, `${net}.10/24`],
    ['attach-veth', a.name, `${id}L`, `${net}.20/24`],
    ['set-ip', a.name, 'eth1', `${net}.11/24`, `${net}.12/24`],
  ]) {
    const r = await plumb(...s)
    t.is(r.exitCode, 0, r.stderr)
  }
  t.is((await plumb('detach', a.name, 'eth2')).exitCode, 0)
  t.is((await plumb('set-ip', a.name, 'eth1', `${net}.12/24`, '--del')).exitCode, 0)
  const ls = await plumb('ls', a.name, '--json')
  t.like(ls.json.guests[0], { interfaces: [{ name: 'eth1', recorded: true }], record: { ops: ['attach-veth', 'set-ip'] } })
  t.regex((await plumb('ls', a.name)).stdout, /eth1 .*\[recorded\]\n[^]*record   attach-veth, set-ip \(replayed on restart; /)
  const [record] = Object.values(recordsIn(lab.records))
  t.deepEqual(record?.entries.map((e) => [e.op, e.args.ifname, e.args.ips]), [
    ['attach-veth', 'eth1', [`${net}.10/24`]],
    ['set-ip', 'eth1', [`${net}.11/24`]],
  ])

  await sh('docker', ['restart', '-t', '0', a.name])
  const a2 = await restarted(a)
  const r = await plumb('replay', a.name)
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(await interfacesOf(a2), { eth1: { ...(await interfacesOf(a2)).eth1!, addrs: [`${net}.10/24`, `${net}.11/24`] } })

  t.is((await plumb('detach', a.name, '--all')).exitCode, 0)
  t.deepEqual(recordsIn(lab.records), {}, 'detach --all: no record left')
  await sh('docker', ['restart', '-t', '0', a.name])
  const a3 = await restarted(a2)
  const none = await plumb('replay', a.name)
  t.is(none.exitCode, 0, none.stderr)
  t.regex(none.stdout, /nothing recorded for docker:.*: nothing to replay/)
  t.deepEqual(await interfacesOf(a3), {})
})

withDocker('--no-persist: not recorded, not replayed', async (t) => {
  const lab = restartLab(t)
  const a = await makeContainer(t, { name: `${lab.id}a` })
  const r = await lab.plumb('attach-veth', a.name, `${lab.id}L`, `${lab.net()}.10/24`, '--no-persist')
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(recordsIn(lab.records), {})
  const ls = await lab.plumb('ls', a.name, '--json')
  t.is(ls.json.guests[0].interfaces[0].recorded, undefined, 'ls: not recorded')
  t.is(ls.json.guests[0].record, undefined)
})

withDocker('p2p-link to a container that is not running: replay says it waits; the link is made when the second one starts (replay of either side), and carries traffic', async (t) => {
  const lab = restartLab(t)
  const { id, plumb } = lab
  const net = lab.net()
  const [a, b] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` })])
  const r = await plumb('p2p-link', a.name, b.name, '--ip-a', `${net}.0/31`, '--ip-b', `${net}.1/31`)
  t.is(r.exitCode, 0, r.stderr)
  const macs = { a: (await interfacesOf(a)).eth1!.mac, b: (await interfacesOf(b)).eth1!.mac }
  await sh('docker', ['stop', '-t', '0', b.name])
  await sh('docker', ['restart', '-t', '0', a.name])
  const a2 = await restarted(a)
  const waiting = await plumb('replay', a.name, '--json')
  t.is(waiting.exitCode, 0, waiting.stderr)
  t.like(waiting.json.entries[0], { op: 'p2p-link', ifname: 'eth1', outcome: 'waiting' })
  t.regex(waiting.json.entries[0].message, /is not running .*the link is made when it starts/)
  t.deepEqual(await interfacesOf(a2), {})
  const ls = await plumb('ls', a.name, '--json')
  t.deepEqual(ls.json.guests[0].record.missing, ['eth1'], 'ls: recorded, not there now')

  await sh('docker', ['start', b.name])
  const b2 = await restarted(b)
  const made = await plumb('replay', b.name, '--json')
  t.is(made.exitCode, 0, made.stderr)
  t.like(made.json.entries[0], { op: 'p2p-link', ifname: 'eth1', outcome: 'made' })
  t.deepEqual((await interfacesOf(a2)).eth1, { mac: macs.a, mtu: 1500, up: true, addrs: [`${net}.0/31`] })
  t.deepEqual((await interfacesOf(b2)).eth1, { mac: macs.b, mtu: 1500, up: true, addrs: [`${net}.1/31`] })
  await assertTraffic(t, at(a2), at(b2), `${net}.1`, 'the p2p link, made by the second start')
  const already = await plumb('replay', a.name, '--json')
  t.like(already.json.entries[0], { outcome: 'already' })
})

withDocker('records of an older plumb (fewer fields) replay; an unreadable one and a newer plumb\'s are reported (exit 1), left as they are, and stop nothing else', async (t) => {
  const lab = restartLab(t)
  const { id, plumb } = lab
  const net = lab.net()
  const [a, b, c] = await Promise.all([makeContainer(t, { name: `${id}a` }), makeContainer(t, { name: `${id}b` }), makeContainer(t, { name: `${id}c` })])
  // As a plumb before the resolved fields (no name, no host end, no MAC, no time) would have written it
  writeFileSync(`${lab.records}/docker-${a.id}.json`, JSON.stringify({ v: 1, engine: 'docker', id: a.id, entries: [{ op: 'attach-veth', args: { bridge: `${id}L`, ifname: 'eth1', ips: [`${net}.10/24`] } }] }))
  const newer = JSON.stringify({ v: 2, engine: 'docker', id: b.id, entries: [{ op: 'attach-veth', args: { bridge: `${id}L`, ifname: 'eth1', ips: [`${net}.11/24`] } }], future: true })
  writeFileSync(`${lab.records}/docker-${b.id}.json`, newer)
  writeFileSync(`${lab.records}/docker-${c.id}.json`, '{"v":1,"engine":"docker","id":')

  const r = await plumb('replay', a.name, '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.like(r.json.entries[0], { op: 'attach-veth', ifname: 'eth1', outcome: 'made' })
  t.deepEqual((await interfacesOf(a)).eth1?.addrs, [`${net}.10/24`])
  for (const [ct, re] of [[b, /version 2 was written by a newer plumb/], [c, /not JSON/]] as const) {
    const bad = await plumb('replay', ct.name)
    t.is(bad.exitCode, 1, bad.stderr)
    t.regex(bad.stderr, re)
  }
  t.is(readFileSync(`${lab.records}/docker-${b.id}.json`, 'utf8'), newer, "the newer plumb's record is as it was")
  // watch --once: the unreadable ones are reported, the readable one is replayed (in place: already)
  const once = await plumb('watch', '--once')
  t.is(once.exitCode, 0, once.stderr)
  t.regex(once.stdout, new RegExp(`skipped .*docker-${b.id}\\.json: .*newer plumb`))
  t.regex(once.stdout, new RegExp(`skipped .*docker-${c.id}\\.json: .*not JSON`))
  t.regex(once.stdout, new RegExp(`docker:${a.name} \\(${a.id.slice(0, 12)}\\) is running with its record in place`))
})

withDocker("a lab's nodes come back too: deploy records the links it makes, a restarted node is replayed and the lab's checks pass again; destroy forgets the records", async (t) => {
  const fx = labFixture(t)
  const lab = restartLab(t)
  const [net, p2p] = [lab.net(), lab.net()]
  const id = fx.id
  const file = fx.write('lab.yml', `name: ${id}
prefix: __lab-name
topology:
  defaults: {kind: linux, image: ${TEST_IMAGE}, cmd: sleep 1000000}
  nodes:
    web: {}
    db: {}
    ${id}l: {kind: bridge, ips: [${net}.1/24]}
  links:
    - endpoints: ["web:eth1", "${id}l:${id}w1"]
      ips: [${net}.10/24@${net}.1]
    - endpoints: ["db:eth1", "${id}l:${id}d1"]
      ips: [${net}.11/24]
    - endpoints: ["web:eth2", "db:eth2"]
      ips: [${p2p}.0/31, ${p2p}.1/31]
checks:
  - {from: web, ping: db}
  - {node: web, ifname: eth2, has-address: ${p2p}.0/31}
  - {node: web, has-route: "default via ${net}.1"}
  - {from: db, ping: "${p2p}.0"}
`)
  const d = await lab.plumb('lab', 'deploy', file)
  t.is(d.exitCode, 0, d.stderr)
  const web = await inspectContainer(`${id}-web`)
  // in the order the links were done: a deploy makes a node's links side by side (each names its
  // interfaces, so a replay in either order makes the same)
  t.deepEqual(Object.values(recordsIn(lab.records)).find((r) => r.name === web.name)?.entries.map((e) => [e.op, e.args.lab]).sort(), [
    ['attach-veth', id],
    ['p2p-link', id],
  ])
  await sh('docker', ['restart', '-t', '0', web.name])
  await restarted(web)
  const failing = await lab.plumb('lab', 'check', file, '--timeout', '1')
  t.is(failing.exitCode, 1, 'a restart breaks the lab')
  const r = await lab.plumb('replay', web.name)
  t.is(r.exitCode, 0, r.stderr)
  const check = await lab.plumb('lab', 'check', file)
  t.is(check.exitCode, 0, check.stdout)
  t.regex(check.stdout, /score 4\/4/)
  const ls = await lab.plumb('ls', web.name, '--json')
  // (made again in the record's order, which is the order the deploy finished them in)
  t.deepEqual(ls.json.guests[0].interfaces.map((i: { name: string; lab?: string }) => [i.name, i.lab]).sort(), [['eth1', id], ['eth2', id]], 'replayed with the lab in its marks')
  const gone = await lab.plumb('lab', 'destroy', file)
  t.is(gone.exitCode, 0, gone.stderr)
  t.deepEqual(recordsIn(lab.records), {}, 'destroy forgets the records of the containers it removed')
})

withDocker('expose: the published port (a host port plumb chose) is recorded as published and answers again after a restart and a replay; expose --del takes it out of the record', async (t) => {
  const lab = restartLab(t)
  const { id, plumb } = lab
  const net = lab.net()
  const br = await makeBridge(t, `${id}L`)
  await sh('ip', ['addr', 'add', `${net}.1/24`, 'dev', br]) // the host reaches the guest through it
  const web = await makeContainer(t, { name: `${id}a`, cmd: ['sh', '-c', 'mkdir -p /tmp/www && echo web > /tmp/www/index.html && exec busybox httpd -f -p 80 -h /tmp/www'] })
  // published ports are undone with the guest's plumbing (before the container goes: teardowns run last-first)
  t.teardown(async () => {
    await runCli(['detach', web.name, '--all', '-q'], { env: lab.env })
    await dropEmptyPlumbChains()
  })
  t.is((await plumb('attach-veth', web.name, br, `${net}.10/24@${net}.1`)).exitCode, 0)
  await startEcho(t, { container: web.name }, 53, 'udp-web', 'udp')
  const e = await plumb('expose', web.name, '80', '53/udp', '--json')
  t.is(e.exitCode, 0, e.stderr)
  const published = e.json.published as Array<{ hostPort: number; proto: string }>
  const chosen = published.find((p) => p.proto === 'tcp')!.hostPort
  const chosenUdp = published.find((p) => p.proto === 'udp')!.hostPort
  t.is(await waitFor(() => httpGet(undefined, '127.0.0.1', chosen, { timeout: 1000 }), { timeout: 10_000, what: 'the published port to answer' }), 'web')
  t.regex((await udpAsk(undefined, `${net}.1`, chosenUdp)) ?? 'no answer', /^udp-web /, 'the published UDP port answers')
  t.deepEqual(Object.values(recordsIn(lab.records))[0]?.entries.map((x) => [x.op, x.args.ports, x.args.to]), [
    ['attach-veth', undefined, undefined],
    ['expose', [`${chosen}:80/tcp`, `${chosenUdp}:53/udp`], `${net}.10`],
  ])

  await sh('docker', ['restart', '-t', '0', web.name])
  await restarted(web)
  t.is(await httpGet(undefined, '127.0.0.1', chosen, { timeout: 1000 }), undefined, 'no answer while the container has no interface')
  const r = await plumb('replay', web.name, '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(r.json.entries.map((x: { op: string; outcome: string }) => [x.op, x.outcome]), [['attach-veth', 'made'], ['expose', 'already']], 'the DNAT to the same address was still in place')
  t.is(await waitFor(() => httpGet(undefined, '127.0.0.1', chosen, { timeout: 1000 }), { timeout: 10_000, what: 'the published port to answer again' }), 'web', 'the same host port answers again')
  // the echo lived in the old netns: started again in the new one, it answers on the same host port
  await startEcho(t, { container: web.name }, 53, 'udp-web', 'udp')
  t.regex((await udpAsk(undefined, `${net}.1`, chosenUdp)) ?? 'no answer', /^udp-web /, 'the same UDP host port answers again')

  t.is((await plumb('expose', web.name, '80', '53/udp', '--del')).exitCode, 0)
  t.deepEqual(Object.values(recordsIn(lab.records))[0]?.entries.map((x) => x.op), ['attach-veth'])
})

withDocker('detach after a restart, with nothing in place: the record forgets the interface (or everything with --all), so a replay does not make it again', async (t) => {
  const lab = restartLab(t)
  const { id, plumb } = lab
  const net = lab.net()
  const a = await makeContainer(t, { name: `${id}a` })
  for (const ip of [10, 20]) t.is((await plumb('attach-veth', a.name, `${id}L`, `${net}.${ip}/24`)).exitCode, 0)
  await sh('docker', ['restart', '-t', '0', a.name])
  const a2 = await restarted(a)
  const d = await plumb('detach', a.name, 'eth2', '--json')
  t.is(d.exitCode, 0, d.stderr)
  t.true(d.json.changed)
  t.regex(d.json.messages.join('\n'), /nothing to detach in docker:.*; forgot eth2 in its record: not made again after a restart/)
  const r = await plumb('replay', a.name, '--json')
  t.deepEqual(r.json.entries.map((x: { ifname: string }) => x.ifname), ['eth1'])
  t.deepEqual(Object.keys(await interfacesOf(a2)), ['eth1'])
  await sh('docker', ['restart', '-t', '0', a.name])
  await restarted(a2)
  t.is((await plumb('detach', a.name, '--all')).exitCode, 0)
  t.deepEqual(recordsIn(lab.records), {})
})

// `plumb pipework`, one test per form of pipework's README, on ip netns guests: what each form
// made is read back from the kernel (ip -j), OVS (ovs-vsctl) and a real DHCP server's lease
// file, and carried traffic where it should; every form prints the plumb command it is.

import { readFileSync } from 'node:fs'
import { getLink, hasBinary, hasOvs, ipJson, isRoot, makeBridge, makeNetns, makeOvsBridge, makeVethPair, ping, PLUMB_BIN, sh, shQuiet, startDnsmasq, testIf, waitFor } from '../helpers/index.js'
import { pipeworkMac } from '../../lib/parse/index.js'
import { probeLinkKind } from '../../lib/kernel/index.js'
import { fixture, plumb } from './ops-fixture.js'

const asRoot = testIf(isRoot, 'pipework: needs root (ip netns, links)')
const withOvs = testIf(isRoot && hasOvs(), 'pipework: the OVS forms need Open vSwitch (ovs-vsctl show answering)')
const withDnsmasq = testIf(isRoot && hasBinary('dnsmasq'), 'pipework: the dhcp form needs dnsmasq')

const addrs = async (ifname: string, ns: string): Promise<string[]> =>
  ((await ipJson(['addr', 'show', 'dev', ifname], ns))[0]?.addr_info ?? []).filter((a: { family: string }) => a.family === 'inet').map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`)

asRoot('pipework BR -i IF -l HOSTIF GUEST IP/PREFIX@GW U:STRING: a veth on the bridge, pipework\'s MAC, the gateway; a rerun changes nothing', async (t) => {
  const f = await fixture(t)
  await makeBridge(t, f.br)
  const hostIf = `${f.id}h`
  const r = await plumb('pipework', f.br, '-i', 'eth2', '-l', hostIf, f.guest, `${f.v4(2)}@${f.gw4}`, `U:${f.ns}`)
  t.is(r.exitCode, 0, r.stderr)
  t.is(r.stdout.split('\n')[0], `# plumb attach-veth ${f.guest} ${f.br} ${f.v4(2)}@${f.gw4} -i eth2 -l ${hostIf} --mac ${pipeworkMac(f.ns)} --replace-gateway`)
  const eth2 = await getLink('eth2', f.ns)
  t.is(eth2?.address, pipeworkMac(f.ns))
  t.deepEqual(await addrs('eth2', f.ns), [f.v4(2)])
  t.true((await ipJson(['route', 'show', 'default'], f.ns)).some((x) => x.gateway === f.gw4 && x.dev === 'eth2'))
  t.is((await getLink(hostIf))?.master, f.br)
  await sh('ip', ['addr', 'add', `${f.gw4}/24`, 'dev', f.br])
  t.true(await ping(f.ns, f.gw4), 'the guest reaches the bridge')
  const again = await plumb('pipework', f.br, '-i', 'eth2', '-l', hostIf, f.guest, `${f.v4(2)}@${f.gw4}`, `U:${f.ns}`)
  t.is(again.exitCode, 0)
  t.regex(again.stdout, /already attached/)
  t.is((await plumb('detach', f.guest, 'eth2')).exitCode, 0)
  t.is(await getLink(hostIf), undefined, 'detach removes what pipework form made')
})

asRoot('pipework brX GUEST IP plans a new Linux bridge (brought up); pipework ovsX plans a new OVS bridge (dry-run)', async (t) => {
  const f = await fixture(t)
  const br = `br${f.id.slice(3)}`
  const r = await plumb('pipework', br, f.guest, f.v4(2), '--dry-run')
  t.is(r.exitCode, 0, r.stderr)
  t.regex(r.stdout, new RegExp(`^ip link add ${br} up type bridge`, 'm'))
  t.is(await getLink(br), undefined, 'dry-run made nothing')
  const ovs = `ovs${f.id.slice(3)}`
  const o = await plumb('pipework', ovs, f.guest, f.v4(3), '@10', '--dry-run')
  t.is(o.exitCode, 0, o.stderr)
  t.regex(o.stdout, new RegExp(`^# plumb ovs-port ${f.guest} ${ovs} ${f.v4(3).replace(/\./g, '\\.')} --tag 10 --create-bridge -i eth1`, 'm'))
  t.regex(o.stdout, new RegExp(`^ovs-vsctl .*add-br ${ovs}`, 'm'))
  const unknown = await plumb('pipework', `${f.id}q`, f.guest, f.v4(2))
  t.is(unknown.exitCode, 2, unknown.stderr)
  t.regex(unknown.stderr, /pipework creates only bridges named br\*/)
})

asRoot('pipework NIC GUEST IP (macvlan) and pipework mac:ADDR GUEST IP reach a machine on that NIC', async (t) => {
  const f = await fixture(t)
  const peer = await makeNetns(t, { name: `${f.id}p` })
  const nic = `${f.id}n`
  await makeVethPair(t, nic, 'eth0', peer)
  await sh('ip', ['-n', peer, 'addr', 'add', f.v4(1), 'dev', 'eth0'])
  const r = await plumb('pipework', nic, f.guest, f.v4(10))
  t.is(r.exitCode, 0, r.stderr)
  t.is(r.stdout.split('\n')[0], `# plumb macvlan ${f.guest} ${nic} ${f.v4(10)} -i eth1`)
  t.is((await getLink('eth1', f.ns))?.linkinfo?.info_kind, 'macvlan')
  t.true(await ping(f.ns, f.gw4), 'the guest reaches the machine on the NIC')
  const mac = (await getLink(nic))?.address as string
  const byMac = await plumb('pipework', `mac:${mac}`, '-i', 'eth2', f.guest, f.v4(11))
  t.is(byMac.exitCode, 0, byMac.stderr)
  t.is(byMac.stdout.split('\n')[0], `# plumb macvlan ${f.guest} ${nic} ${f.v4(11)} -i eth2`)
  t.deepEqual(await addrs('eth2', f.ns), [f.v4(11)])
  const none = await plumb('pipework', 'mac:02:00:5e:00:53:99', f.guest, f.v4(12))
  t.is(none.exitCode, 3, none.stderr)
})

asRoot('pipework --direct-phys NIC -i IF GUEST IP moves the NIC in; detach gives it back under its name', async (t) => {
  const f = await fixture(t)
  const peer = await makeNetns(t, { name: `${f.id}p` })
  const nic = `${f.id}d`
  await makeVethPair(t, nic, 'eth0', peer)
  await sh('ip', ['-n', peer, 'addr', 'add', f.v4(1), 'dev', 'eth0'])
  const r = await plumb('pipework', '--direct-phys', nic, '-i', 'eth3', f.guest, f.v4(20))
  t.is(r.exitCode, 0, r.stderr)
  t.is(r.stdout.split('\n')[0], `# plumb move-dev ${f.guest} ${nic} ${f.v4(20)} -i eth3`)
  t.is(await getLink(nic), undefined, 'the NIC left the host')
  t.deepEqual(await addrs('eth3', f.ns), [f.v4(20)])
  t.true(await ping(f.ns, f.gw4))
  t.is((await plumb('detach', f.guest, 'eth3')).exitCode, 0)
  t.truthy(await getLink(nic), 'back on the host under its own name')
})

asRoot('pipework BR GUEST 0/0: the interface without an address', async (t) => {
  const f = await fixture(t)
  await makeBridge(t, f.br)
  const r = await plumb('pipework', f.br, f.guest, '0/0')
  t.is(r.exitCode, 0, r.stderr)
  t.is(r.stdout.split('\n')[0], `# plumb attach-veth ${f.guest} ${f.br} -i eth1`)
  const eth1 = await getLink('eth1', f.ns)
  t.truthy(eth1)
  t.true(eth1?.flags.includes('UP'))
  t.deepEqual(await addrs('eth1', f.ns), [])
})

asRoot('pipework NIC GUEST IP @VLAN is a VLAN child (exit 5 where the kernel has no 8021q, with its plan); @VLAN on a Linux bridge is refused', async (t) => {
  const f = await fixture(t)
  const nic = `${f.id}n`
  await makeVethPair(t, nic, `${f.id}m`)
  const dry = await plumb('pipework', nic, f.guest, f.v4(30), '@10', '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.regex(dry.stdout, new RegExp(`^ip link add eth1 link ${nic} .*type vlan id 10$`, 'm'))
  const real = await plumb('pipework', nic, f.guest, f.v4(30), '@10')
  if (await probeLinkKind('vlan')) {
    t.is(real.exitCode, 0, real.stderr)
    t.is((await getLink('eth1', f.ns))?.linkinfo?.info_data?.id, 10)
  } else {
    t.is(real.exitCode, 5, real.stderr)
    t.regex(real.stderr, /802\.1q/)
    t.is(await getLink('eth1', f.ns), undefined, 'nothing was left')
  }
  await makeBridge(t, f.br)
  const onBridge = await plumb('pipework', f.br, '-i', 'eth5', f.guest, f.v4(31), '@10')
  t.is(onBridge.exitCode, 5, onBridge.stderr)
  t.is(await getLink('eth5', f.ns), undefined)
})

withOvs('pipework OVSBR GUEST IP MAC@VLAN: an OVS access port tagged VLAN', async (t) => {
  const f = await fixture(t)
  const br = await makeOvsBridge(t, `${f.id}o`)
  const r = await plumb('pipework', br, '-l', `${f.id}v`, f.guest, f.v4(40), '02:00:5e:00:53:40@10')
  t.is(r.exitCode, 0, r.stderr)
  t.is(r.stdout.split('\n')[0], `# plumb ovs-port ${f.guest} ${br} ${f.v4(40)} --tag 10 -i eth1 -l ${f.id}v --mac 02:00:5e:00:53:40`)
  t.is(await sh('ovs-vsctl', ['--timeout=5', 'get', 'port', `${f.id}v`, 'tag']), '10')
  t.is((await getLink('eth1', f.ns))?.address, '02:00:5e:00:53:40')
  t.is((await plumb('detach', f.guest, 'eth1')).exitCode, 0)
  t.is((await shQuiet('ovs-vsctl', ['--timeout=5', 'get', 'port', `${f.id}v`, 'tag'])).exitCode === 0, false, 'the port row is gone')
})

withDnsmasq('pipework BR GUEST dhcp U:STRING: a lease from a real server for pipework\'s MAC', async (t) => {
  const f = await fixture(t)
  await makeBridge(t, f.br)
  const srv = await makeNetns(t, { name: `${f.id}s` })
  await makeVethPair(t, `${f.id}a`, 'srv0', srv)
  await sh('ip', ['link', 'set', `${f.id}a`, 'master', f.br])
  await sh('ip', ['-n', srv, 'addr', 'add', f.v4(1), 'dev', 'srv0'])
  const server = await startDnsmasq(t, srv, 'srv0', `198.18.${f.octet}`)
  const r = await plumb('pipework', f.br, f.guest, 'dhcp', 'U:pt-reserved')
  t.is(r.exitCode, 0, r.stderr)
  t.regex(r.stdout, /DHCP lease 198\.18\.\d+\.1\d\d\/24/)
  const mac = pipeworkMac('pt-reserved')
  t.is((await getLink('eth1', f.ns))?.address, mac)
  await waitFor(() => readFileSync(server.leaseFile, 'utf8').includes(mac), { what: "the server's lease for pipework's MAC" })
  t.regex((await addrs('eth1', f.ns))[0] ?? '', new RegExp(`^198\\.18\\.${f.octet}\\.1\\d\\d/24$`))
  t.is((await plumb('detach', f.guest, '--all')).exitCode, 0)
})

asRoot('pipework route|rule|tc GUEST ARGS run ip route / ip rule / tc in the guest', async (t) => {
  const f = await fixture(t)
  await makeBridge(t, f.br)
  t.is((await plumb('pipework', f.br, f.guest, f.v4(2))).exitCode, 0)
  const route = await plumb('pipework', 'route', f.guest, 'add', `198.19.${f.octet}.0/24`, 'via', f.gw4)
  t.is(route.exitCode, 0, route.stderr)
  t.true((await ipJson(['route', 'show'], f.ns)).some((x) => x.dst === `198.19.${f.octet}.0/24` && x.gateway === f.gw4))
  const rule = await plumb('pipework', 'rule', f.guest, 'add', 'from', f.v4(2).split('/')[0]!, 'table', '100')
  t.is(rule.exitCode, 0, rule.stderr)
  t.true((await ipJson(['rule', 'show'], f.ns)).some((x) => x.table === '100' && x.src === f.v4(2).split('/')[0]))
  const tc = await plumb('pipework', 'tc', f.guest, 'qdisc', 'add', 'dev', 'eth1', 'root', 'pfifo', 'limit', '77')
  t.is(tc.exitCode, 0, tc.stderr)
  t.regex(await sh('ip', ['netns', 'exec', f.ns, 'tc', 'qdisc', 'show', 'dev', 'eth1']), /pfifo .*limit 77p/)
  const bad = await plumb('pipework', 'route', f.guest, 'add', 'nonsense')
  t.not(bad.exitCode, 0, "ip's own failure comes through")
})

asRoot('pipework --wait [-i IF], run inside the guest, returns once the interface is up with an address', async (t) => {
  const f = await fixture(t)
  await makeBridge(t, f.br)
  t.is((await plumb('pipework', f.br, '-i', 'eth4', f.guest, f.v4(2))).exitCode, 0)
  const r = await sh('ip', ['netns', 'exec', f.ns, process.execPath, PLUMB_BIN, 'pipework', '--wait', '-i', 'eth4'], { timeout: 20_000 })
  t.regex(r, new RegExp(`eth4 is up: ${f.v4(2).replace(/\./g, '\\.')}`))
})

asRoot('pipework refuses what it cannot do: a bare address (exit 2, the /24 hint), dummy (exit 5), --save', async (t) => {
  const f = await fixture(t)
  const bare = await plumb('pipework', 'br1', f.guest, '198.18.1.1')
  t.is(bare.exitCode, 2)
  t.regex(bare.stderr, /did you mean 198\.18\.1\.1\/24\?/)
  t.is((await plumb('pipework', 'dummy', f.guest, f.v4(2))).exitCode, 5)
  t.is((await plumb('pipework', '--save', '/tmp/x', 'br1', f.guest, '0/0')).exitCode, 2)
})

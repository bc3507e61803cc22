// Bad input for the link menu through the CLI: missing parents, a bridge where a NIC is needed
// (and the reverse), invalid modes and VIDs, name collisions in the guest. Each exits with
// CLI.md's code and leaves the host, the guest and OVS exactly as they were.

import { hasOvs, isRoot, sh, testIf } from '../helpers/index.js'
import { fixture, foreignNic, plumb } from './ops-fixture.js'
import { nicWithFarEnd, ovsBridgeName, worldView } from './links-fixture.js'

const withOvs = testIf(isRoot && hasOvs(), 'links-badinput: needs root and a running Open vSwitch')

withOvs('every link command refuses bad input with the right exit code, a message, a hint, and nothing changed', async (t) => {
  const f = await fixture(t)
  const { nic } = await nicWithFarEnd(t, f)
  const lbr = f.br
  await sh('ip', ['link', 'add', lbr, 'type', 'bridge'])
  t.teardown(async () => void (await sh('ip', ['link', 'del', lbr]).catch(() => '')))
  const obr = ovsBridgeName(t, f)
  await sh('ovs-vsctl', ['--timeout=10', 'add-br', obr, '--', 'set', 'bridge', obr, 'datapath_type=netdev'])
  await foreignNic(t, f, 'eth1', f.v4(5))
  const g = f.guest
  const missing = `${f.id}zz`

  const cases: Array<[string, string[], number, RegExp]> = [
    // macvlan
    ['macvlan: missing parent', ['macvlan', g, missing], 3, /no interface/],
    ['macvlan: a bridge as parent', ['macvlan', g, lbr], 4, /is a bridge/],
    ['macvlan: an OVS bridge as parent', ['macvlan', g, obr, '-i', 'mv0'], 4, /./],
    ['macvlan: invalid mode', ['macvlan', g, nic, '--mode', 'hairpin'], 2, /invalid macvlan mode/],
    ['macvlan: name taken in the guest', ['macvlan', g, nic, '-i', 'eth1'], 4, /not plumb's/],
    ['macvlan: MTU above the parent', ['macvlan', g, nic, '--mtu', '9000'], 2, /MTU/],
    ['macvlan: multicast MAC', ['macvlan', g, nic, '--mac', '01:00:5e:00:00:01'], 2, /MAC|mac/],
    ['macvlan: unknown guest', ['macvlan', `netns:${missing}`, nic], 3, /no such network namespace/],
    // vlan
    ['vlan: missing parent', ['vlan', g, missing, '10'], 3, /no interface/],
    ['vlan: VID 0', ['vlan', g, nic, '0'], 2, /invalid VLAN ID/],
    ['vlan: VID 4095', ['vlan', g, nic, '4095'], 2, /invalid VLAN ID/],
    ['vlan: VID 4096', ['vlan', g, nic, '4096'], 2, /invalid VLAN ID/],
    ['vlan: VID not a number', ['vlan', g, nic, 'x'], 2, /invalid VLAN ID/],
    ['vlan: Linux bridge', ['vlan', g, lbr, '10'], 5, /VLAN filtering/],
    ['vlan: name taken in the guest', ['vlan', g, nic, '10', '-i', 'eth1'], 4, /not plumb's/],
    ['vlan: OVS, name taken in the guest', ['vlan', g, obr, '10', '-i', 'eth1'], 4, /already exists/],
    // ovs-port
    ['ovs-port: missing bridge', ['ovs-port', g, missing], 3, /no OVS bridge/],
    ['ovs-port: a Linux bridge', ['ovs-port', g, lbr], 4, /Linux bridge, not an OVS bridge/],
    ['ovs-port: a NIC', ['ovs-port', g, nic], 4, /not an OVS bridge/],
    ['ovs-port: VID 0', ['ovs-port', g, obr, '--tag', '0'], 2, /invalid VLAN ID/],
    ['ovs-port: VID 4096 in trunks', ['ovs-port', g, obr, '--trunks', '10,4096'], 2, /invalid VLAN ID/],
    ['ovs-port: --tag and --trunks', ['ovs-port', g, obr, '--tag', '10', '--trunks', '20'], 2, /exclude each other/],
    ['ovs-port: name taken in the guest', ['ovs-port', g, obr, '-i', 'eth1'], 4, /already exists/],
    ['ovs-port: -l taken on the host', ['ovs-port', g, obr, '-l', nic], 4, /already exists/],
    // attach-veth: a NIC where a bridge is needed
    ['attach-veth: a NIC as bridge', ['attach-veth', g, nic], 4, /not a bridge/],
    // p2p-link
    ['p2p-link: the same guest twice', ['p2p-link', g, g], 2, /same network namespace/],
    ['p2p-link: name taken in the guest', ['p2p-link', g, 'host', '--ifname-a', 'eth1'], 4, /already exists/],
    ['p2p-link: host end name taken', ['p2p-link', g, 'host', '--ifname-b', nic], 4, /already exists/],
    // move-dev
    ['move-dev: missing device', ['move-dev', g, missing], 3, /no interface/],
    ['move-dev: a bridge', ['move-dev', g, lbr], 4, /bridge/],
    ['move-dev: name taken in the guest', ['move-dev', g, nic, '-i', 'eth1'], 4, /already exists/],
  ]

  const before = await worldView(f.id, [f.ns], { ovs: true })
  for (const [what, args, code, re] of cases) {
    const r = await plumb(...args)
    t.is(r.exitCode, code, `${what}: ${r.stderr}`)
    t.regex(r.stderr, /^plumb: /, what)
    t.regex(r.stderr, re, what)
    t.is(r.stdout, '', `${what}: nothing on stdout`)
    const j = await plumb(...args, '--json')
    t.is(j.exitCode, code, `${what} --json`)
    t.truthy(j.json?.error?.code, `${what}: a JSON error on stderr`)
  }
  t.deepEqual(await worldView(f.id, [f.ns], { ovs: true }), before, 'host, guest and OVS unchanged')
})

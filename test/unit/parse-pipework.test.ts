// Table tests for pipework's grammar (lib/parse/pipework.ts): every form of its README, the
// plumb operation and command line each becomes, and U:STRING MACs byte for byte as pipework
// derives them (computed here by its own shell pipeline).

import test from 'ava'
import { execFileSync } from 'node:child_process'
import { PlumbError } from '../../lib/errors.js'
import { usage } from '../helpers/assert.js'
import { parsePipework, pipeworkMac, planPipework, plumbLine } from '../../lib/parse/index.js'
import type { PipeworkCommand, PipeworkHostKind } from '../../lib/parse/index.js'

/** pipework's derivation, run by sh: echo the unquoted string, md5sum, 02 and the first five bytes. */
function shMac(s: string): string {
  return execFileSync('sh', ['-c', 'echo $1 | md5sum | sed "s/^\\(..\\)\\(..\\)\\(..\\)\\(..\\)\\(..\\).*$/02:\\1:\\2:\\3:\\4:\\5/"', 'sh', s], { encoding: 'utf8' }).trim()
}

for (const s of ['web', 'db-1', 'a b', '  spaced   out  ', 'ünïcode', 'x'.repeat(300), 'mysql.lab.example', '12345']) {
  test(`U:${JSON.stringify(s.slice(0, 20))} gives the MAC pipework's sh pipeline gives`, (t) => {
    t.is(pipeworkMac(s), shMac(s))
    t.regex(pipeworkMac(s), /^02(:[0-9a-f]{2}){5}$/)
  })
}

type Link = Extract<PipeworkCommand, { kind: 'link' }>
const link = (argv: string[]): Link => {
  const c = parsePipework(argv)
  if (c.kind !== 'link') throw new Error(`not a link command: ${argv.join(' ')}`)
  return c
}

// pipework README form -> (host kind) -> the plumb command it becomes
const FORMS: Array<[string, PipeworkHostKind, string]> = [
  ['br1 web 198.18.1.1/24', 'missing', 'plumb attach-veth web br1 198.18.1.1/24 -i eth1'],
  ['br1 web 198.18.1.1/24', 'linux-bridge', 'plumb attach-veth web br1 198.18.1.1/24 -i eth1'],
  ['br1 -i eth2 web 198.18.1.1/24', 'linux-bridge', 'plumb attach-veth web br1 198.18.1.1/24 -i eth2'],
  ['br1 -i eth2 -l hostapp1 web 198.18.1.1/24', 'linux-bridge', 'plumb attach-veth web br1 198.18.1.1/24 -i eth2 -l hostapp1'],
  ['br1 web 198.18.4.25/20@198.18.4.1', 'linux-bridge', 'plumb attach-veth web br1 198.18.4.25/20@198.18.4.1 -i eth1 --replace-gateway'],
  ['eth2 web 198.18.2.157/24', 'nic', 'plumb macvlan web eth2 198.18.2.157/24 -i eth1'],
  ['mac:02:42:ac:11:00:02 web 198.18.2.157/24', 'nic', 'plumb macvlan web eth2 198.18.2.157/24 -i eth1'],
  ['eth0 web 198.18.1.234/24@198.18.1.254', 'nic', 'plumb macvlan web eth0 198.18.1.234/24@198.18.1.254 -i eth1 --replace-gateway'],
  ['--direct-phys eth1 web 198.18.1.2/24', 'nic', 'plumb move-dev web eth1 198.18.1.2/24 -i eth1'],
  ['--direct-phys mac:02:42:ac:11:00:02 -i eth3 web 0/0', 'nic', 'plumb move-dev web eth2 -i eth3'],
  ['br1 web 0/0', 'linux-bridge', 'plumb attach-veth web br1 -i eth1'],
  ['eth1 web dhcp', 'nic', 'plumb macvlan web eth1 dhcp -i eth1 --hostname web'],
  ['eth1 web dhclient', 'nic', 'plumb macvlan web eth1 dhcp -i eth1 --dhcp-client dhclient --hostname web'],
  ['eth1 web udhcpc', 'nic', 'plumb macvlan web eth1 dhcp -i eth1 --dhcp-client udhcpc --hostname web'],
  ['eth1 web dhcpcd', 'nic', 'plumb macvlan web eth1 dhcp -i eth1 --dhcp-client dhcpcd --hostname web'],
  ['eth1 web dhcp:-f', 'nic', 'plumb macvlan web eth1 dhcp -i eth1 --hostname web'],
  ['eth1 web_1 dhcp', 'nic', 'plumb macvlan web_1 eth1 dhcp -i eth1'],
  ['eth0 web 198.18.1.2/24 26:2e:71:98:60:8f', 'nic', 'plumb macvlan web eth0 198.18.1.2/24 -i eth1 --mac 26:2e:71:98:60:8f'],
  ['br0 web dhcp fa:de:b0:99:52:1c', 'linux-bridge', 'plumb attach-veth web br0 dhcp -i eth1 --mac fa:de:b0:99:52:1c --hostname web'],
  ['br0 web dhcp U:web', 'linux-bridge', `plumb attach-veth web br0 dhcp -i eth1 --mac ${pipeworkMac('web')} --hostname web`],
  ['ovsbr0 web dhcp @10', 'ovs-bridge', 'plumb ovs-port web ovsbr0 dhcp --tag 10 -i eth1 --hostname web'],
  ['ovsbr0 web 198.18.1.2/24', 'ovs-bridge', 'plumb ovs-port web ovsbr0 198.18.1.2/24 -i eth1'],
  ['ovsbr9 web 198.18.1.2/24 U:web@20', 'missing', `plumb ovs-port web ovsbr9 198.18.1.2/24 --tag 20 --create-bridge -i eth1 --mac ${pipeworkMac('web')}`],
  ['eth2 web 198.18.10.2/24 @10', 'nic', 'plumb vlan web eth2 10 198.18.10.2/24 -i eth1'],
  ['br1 web 198.18.1.1/24 @10', 'linux-bridge', 'plumb attach-veth web br1 198.18.1.1/24 --vlan 10 -i eth1'],
]

for (const [line, kind, want] of FORMS) {
  test(`pipework ${line} (${kind}) is: ${want}`, (t) => {
    const cmd = link(line.split(' '))
    const name = 'mac' in cmd.host ? 'eth2' : cmd.host.name
    t.is(plumbLine(cmd, planPipework(cmd, name, kind)), want)
  })
}

test('@VLAN on a Linux bridge keeps the VLAN for attach-veth, which refuses it as pipework did', (t) => {
  const cmd = link(['br1', 'web', '198.18.1.1/24', '@10'])
  t.is(cmd.vlan, 10)
  t.deepEqual(planPipework(cmd, 'br1', 'linux-bridge'), { op: 'attach-veth', bridge: 'br1' })
})

test('the parsed fields: MAC, VLAN, flags', (t) => {
  const cmd = link(['br1', '-i', 'eth2', '-l', 'pt-h', '-a', '6', 'web', '2001:db8::10/64', 'U:web@7'])
  t.deepEqual(cmd, {
    kind: 'link',
    directPhys: false,
    host: { name: 'br1' },
    ifname: 'eth2',
    hostIfname: 'pt-h',
    guest: 'web',
    ip: { kind: 'static', spec: '2001:db8::10/64', family: 6, gateway: false },
    mac: { given: 'U:web', mac: pipeworkMac('web') },
    vlan: 7,
  })
  t.deepEqual(parsePipework(['--wait']), { kind: 'wait', ifname: 'eth1' })
  t.deepEqual(parsePipework(['--wait', '-i', 'ib0']), { kind: 'wait', ifname: 'ib0' })
  t.deepEqual(parsePipework(['route', 'web', 'add', '198.19.0.0/16', 'via', '198.18.1.1']), { kind: 'exec', tool: 'route', guest: 'web', args: ['add', '198.19.0.0/16', 'via', '198.18.1.1'] })
  t.deepEqual(parsePipework(['rule', 'web', 'add', 'from', '198.18.1.2', 'table', '100']).kind, 'exec')
  t.deepEqual(parsePipework(['tc', 'web', 'qdisc', 'add', 'dev', 'eth1', 'root', 'netem', 'delay', '100ms']), { kind: 'exec', tool: 'tc', guest: 'web', args: ['qdisc', 'add', 'dev', 'eth1', 'root', 'netem', 'delay', '100ms'] })
  t.deepEqual(link(['eth1', 'web', 'dhcp:-x hostname:db -f']).ip, { kind: 'dhcp', client: 'auto', hostname: 'db' })
})

test('bad pipework lines are usage errors naming the problem', (t) => {
  usage(t, () => parsePipework(['br1', 'web', '198.18.1.1']), { message: /missing prefix length/, hint: /did you mean 198\.18\.1\.1\/24\?/ })
  usage(t, () => parsePipework([]), { message: /needs a host interface/ })
  usage(t, () => parsePipework(['br1', 'web']), { message: /needs a guest and an address/ })
  usage(t, () => parsePipework(['br1', 'web', '198.18.1.1/24', 'zz:zz']), { message: /invalid MAC/ })
  usage(t, () => parsePipework(['br1', 'web', '198.18.1.1/24', '@4095']), { message: /VLAN|VID|4094/i })
  usage(t, () => parsePipework(['br1', 'web', '198.18.1.1/24', 'U:']), { message: /empty U: MAC seed/ })
  usage(t, () => parsePipework(['br1', 'web', '198.18.1.1/24', '02:00:00:00:00:01', 'extra']), { message: /unexpected "extra"/ })
  usage(t, () => parsePipework(['eth1', 'web', 'dhcp:-q']), { message: /does not pass "-q"/ })
  usage(t, () => parsePipework(['br1', '-a', '4', 'web', '2001:db8::1/64']), { message: /-a 4 but/ })
  usage(t, () => parsePipework(['route', 'web']), { message: /needs a guest and the arguments/ })
  usage(t, () => parsePipework(['--wait', 'extra']), { message: /unexpected/ })
  usage(t, () => parsePipework(['--save', 'f', 'br1', 'web', '0/0']), { message: /--save is not supported/ })
  const dummy = t.throws(() => parsePipework(['dummy', 'web', '198.18.1.1/24']), { instanceOf: PlumbError }) as PlumbError
  t.is(dummy.exitCode, 5)
  usage(t, () => planPipework(link(['eth9', 'web', '0/0']), 'eth9', 'missing'), { message: /pipework creates only bridges named br\*/ })
  usage(t, () => planPipework(link(['--direct-phys', 'br1', 'web', '0/0']), 'br1', 'linux-bridge'), { message: /is a bridge/ })
  usage(t, () => planPipework(link(['--direct-phys', 'eth1', 'web', '0/0', '02:00:00:00:00:01']), 'eth1', 'nic'), { message: /plumb moves a NIC with its own MAC/ })
})

// Table tests for the CNI plugin's input (lib/cni/config.ts): the CNI_* environment, the network
// config, and the spec's error code for each way they can be wrong.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { CniError } from '../../lib/cni/errors.js'
import { asCniError } from '../../lib/cni/errors.js'
import { compareVersions, parseCniArgs, parseEnv, parseNetConf } from '../../lib/cni/config.js'
import type { CniCommand } from '../../lib/cni/config.js'
import { ipamFamilies } from '../../lib/cni/plugin.js'
import { PlumbError } from '../../lib/errors.js'

function cniFails(t: ExecutionContext, fn: () => unknown, code: number, message: RegExp): void {
  const err = t.throws(fn, { instanceOf: CniError }) as CniError
  t.is(err.code, code, err.message)
  t.regex(err.message, message)
}

const ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' }

test('parseEnv: ADD with every variable', (t) => {
  t.deepEqual(parseEnv({ ...ENV, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web' }), {
    command: 'ADD',
    containerId: 'abc123',
    netns: '/run/netns/x',
    ifname: 'eth0',
    args: { IgnoreUnknown: '1', K8S_POD_NAME: 'web' },
    path: ['/opt/cni/bin', '/usr/lib/cni'],
  })
})

test('parseEnv: DEL without CNI_NETNS (containerd sends it empty once the task is gone)', (t) => {
  const e = parseEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' })
  t.is(e.command, 'DEL')
  t.is(e.netns, undefined)
})

test('parseEnv: VERSION ignores the container variables (libcni validates a config with "dummy" in each)', (t) => {
  t.deepEqual(parseEnv({ CNI_COMMAND: 'VERSION', CNI_CONTAINERID: 'dummy', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: '/usr/lib/cni' }), { command: 'VERSION', args: {}, path: ['/usr/lib/cni'] })
})

test('parseEnv: VERSION, GC and STATUS need no container', (t) => {
  t.is(parseEnv({ CNI_COMMAND: 'VERSION' }).command, 'VERSION')
  t.deepEqual(parseEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }).path, ['/usr/lib/cni'])
  t.is(parseEnv({ CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' }).command, 'STATUS')
})

const badEnv: Array<[string, Record<string, string>, RegExp]> = [
  ['no CNI_COMMAND', { ...ENV, CNI_COMMAND: '' }, /unknown CNI_COMMAND ""/],
  ['an unknown command', { ...ENV, CNI_COMMAND: 'UPDATE' }, /unknown CNI_COMMAND "UPDATE"/],
  ['ADD without CNI_NETNS', { ...ENV, CNI_NETNS: '' }, /missing: CNI_NETNS/],
  ['ADD without container id and ifname', { ...ENV, CNI_CONTAINERID: '', CNI_IFNAME: '' }, /missing: CNI_CONTAINERID, CNI_IFNAME/],
  ['CHECK without CNI_PATH', { ...ENV, CNI_COMMAND: 'CHECK', CNI_PATH: '' }, /missing: CNI_PATH/],
  ['GC without CNI_PATH', { CNI_COMMAND: 'GC' }, /missing: CNI_PATH/],
  ['a container id with a slash', { ...ENV, CNI_CONTAINERID: 'a/b' }, /invalid CNI_CONTAINERID "a\/b"/],
  ['a container id starting with a dash', { ...ENV, CNI_CONTAINERID: '-x' }, /invalid CNI_CONTAINERID/],
  ['a relative netns path', { ...ENV, CNI_NETNS: 'netns/x' }, /not an absolute path/],
  ['an ifname of 16 bytes', { ...ENV, CNI_IFNAME: 'eth0123456789012' }, /CNI_IFNAME "eth0123456789012" is 16 bytes/],
  ['an ifname with a colon', { ...ENV, CNI_IFNAME: 'eth0:1' }, /contains "\/", ":" or whitespace/],
  ['an ifname "."', { ...ENV, CNI_IFNAME: '.' }, /invalid CNI_IFNAME "\."/],
  ['CNI_ARGS without "="', { ...ENV, CNI_ARGS: 'IgnoreUnknown' }, /invalid CNI_ARGS pair "IgnoreUnknown"/],
]
for (const [what, env, message] of badEnv) {
  test(`parseEnv refuses ${what} (error 4)`, (t) => cniFails(t, () => parseEnv(env), 4, message))
}

test('parseCniArgs: empty pairs are skipped, values may hold "="', (t) => {
  t.deepEqual(parseCniArgs(';A=1;;B=x=y;'), { A: '1', B: 'x=y' })
})

const base = { cniVersion: '1.0.0', name: 'pt-net', type: 'plumb', op: 'attach-veth', bridge: 'br0' }

test('parseNetConf: the smallest attach-veth config', (t) => {
  const c = parseNetConf(base, 'ADD')
  t.is(c.cniVersion, '1.0.0')
  t.deepEqual(c.op, { op: 'attach-veth', bridge: 'br0' })
  t.is(c.dataDir, '/var/lib/cni/plumb')
  t.deepEqual(c.runtimeConfig, { portMappings: [], ips: [] })
  t.is(c.ipam, undefined)
  t.is(c.raw, base)
})

const ops: Array<[Record<string, unknown>, unknown]> = [
  [{ op: 'attach-veth', bridge: 'br0', mtu: 1400, mac: 'seed:x', firewall: false }, { op: 'attach-veth', bridge: 'br0', mtu: 1400, mac: 'seed:x', firewall: false }],
  [{ op: 'ovs-port', bridge: 'ovs0', tag: 10, createBridge: true }, { op: 'ovs-port', bridge: 'ovs0', tag: 10, createBridge: true }],
  [{ op: 'ovs-port', bridge: 'ovs0', trunks: [10, 20] }, { op: 'ovs-port', bridge: 'ovs0', trunks: [10, 20] }],
  [{ op: 'macvlan', parent: 'enp3s0', mode: 'private' }, { op: 'macvlan', parent: 'enp3s0', mode: 'private' }],
  [{ op: 'vlan', parent: 'enp3s0', vid: 10, mtu: 1400 }, { op: 'vlan', parent: 'enp3s0', vid: 10, mtu: 1400 }],
  [{ op: 'move-dev', device: 'enp4s0' }, { op: 'move-dev', device: 'enp4s0' }],
]
for (const [fields, want] of ops) {
  test(`parseNetConf: op ${String(fields.op)} with ${Object.keys(fields).slice(1).join(', ')}`, (t) => {
    t.deepEqual(parseNetConf({ cniVersion: '0.4.0', name: 'n', type: 'plumb', ...fields }, 'ADD').op, want)
  })
}

test('parseNetConf: runtimeConfig capabilities (portMappings, mac, ips), ifname, dataDir, verbose, dns', (t) => {
  const c = parseNetConf(
    {
      ...base,
      ifname: 'net1',
      dataDir: '/tmp/pt-x/',
      verbose: true,
      dns: { nameservers: ['198.18.0.53'] },
      capabilities: { portMappings: true, mac: true, ips: true },
      runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'TCP' }, { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' }], mac: '02:00:00:00:00:01', ips: ['198.18.0.5/24'] },
    },
    'ADD',
  )
  t.deepEqual(c.runtimeConfig, {
    portMappings: [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
    ],
    mac: '02:00:00:00:00:01',
    ips: ['198.18.0.5/24'],
  })
  t.is(c.ifname, 'net1')
  t.is(c.dataDir, '/tmp/pt-x')
  t.true(c.verbose)
  t.deepEqual(c.dns, { nameservers: ['198.18.0.53'] })
})

test('parseNetConf: keys runtimes add and namespaced keys are accepted', (t) => {
  t.notThrows(() => parseNetConf({ ...base, cniVersions: ['1.0.0'], disableCheck: false, disableGC: false, args: { cni: {} }, 'io.k8s.example/x': 1, ipam: {} }, 'ADD'))
  t.is(parseNetConf({ ...base, ipam: {} }, 'ADD').ipam, undefined, 'an empty ipam section means no IPAM')
})

test('parseNetConf: GC takes cni.dev/valid-attachments, and the older cni.dev/attachments', (t) => {
  const list = [{ containerID: 'c1', ifname: 'eth0' }]
  t.deepEqual(parseNetConf({ ...base, cniVersion: '1.1.0', 'cni.dev/valid-attachments': list }, 'GC').validAttachments, list)
  t.deepEqual(parseNetConf({ ...base, cniVersion: '1.1.0', 'cni.dev/attachments': list }, 'GC').validAttachments, list)
  t.deepEqual(parseNetConf({ ...base, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }, 'GC').validAttachments, [])
})

const badConf: Array<[string, Record<string, unknown>, CniCommand, number, RegExp]> = [
  ['cniVersion 0.2.0', { ...base, cniVersion: '0.2.0' }, 'ADD', 1, /incompatible CNI versions: the config is 0\.2\.0/],
  ['cniVersion 2.0.0', { ...base, cniVersion: '2.0.0' }, 'ADD', 1, /the config is 2\.0\.0/],
  ['no cniVersion (read as 0.1.0)', { name: 'n', type: 'plumb', op: 'attach-veth', bridge: 'b' }, 'ADD', 1, /the config is 0\.1\.0/],
  ['a malformed cniVersion', { ...base, cniVersion: 'one' }, 'ADD', 6, /invalid cniVersion "one"/],
  ['CHECK at 0.3.1', { ...base, cniVersion: '0.3.1' }, 'CHECK', 1, /0\.3\.1 does not allow CHECK/],
  ['GC at 1.0.0', { ...base, 'cni.dev/valid-attachments': [] }, 'GC', 1, /1\.0\.0 does not allow GC/],
  ['STATUS at 0.4.0', { ...base, cniVersion: '0.4.0' }, 'STATUS', 1, /0\.4\.0 does not allow STATUS/],
  ['no name', { ...base, name: '' }, 'ADD', 7, /no network "name"/],
  ['a name with a slash', { ...base, name: 'a/b' }, 'ADD', 7, /invalid network name "a\/b"/],
  ['no op', { cniVersion: '1.0.0', name: 'n', type: 'plumb', bridge: 'b' }, 'ADD', 7, /has no "op"/],
  ['an unknown op', { ...base, op: 'teleport' }, 'ADD', 7, /unknown op "teleport"/],
  ['attach-veth without a bridge', { cniVersion: '1.0.0', name: 'n', op: 'attach-veth' }, 'ADD', 7, /op attach-veth needs "bridge"/],
  ['vlan without vid', { cniVersion: '1.0.0', name: 'n', op: 'vlan', parent: 'x' }, 'ADD', 7, /op vlan needs "vid"/],
  ['an mtu that is a string', { ...base, mtu: '1400' }, 'ADD', 7, /"mtu" must be a number/],
  ['trunks that are not numbers', { cniVersion: '1.0.0', name: 'n', op: 'ovs-port', bridge: 'o', trunks: ['10'] }, 'ADD', 7, /"trunks" must be a number array/],
  ["another op's option", { ...base, parent: 'eth1' }, 'ADD', 2, /"parent" is an option of op macvlan, not of attach-veth/],
  ['an unknown field', { ...base, brdige: 'x' }, 'ADD', 2, /unknown field "brdige"/],
  ['an ipam section without type', { ...base, ipam: { subnet: '198.18.0.0/24' } }, 'ADD', 7, /ipam\.type must name an IPAM plugin/],
  ['an ipam type with a slash', { ...base, ipam: { type: '../x' } }, 'ADD', 7, /ipam\.type must name/],
  ['a relative dataDir', { ...base, dataDir: 'data' }, 'ADD', 7, /"dataDir" must be an absolute path/],
  ['an ifname with whitespace', { ...base, ifname: 'eth 1' }, 'ADD', 7, /contains "\/", ":" or whitespace/],
  ['a port mapping without hostPort', { ...base, runtimeConfig: { portMappings: [{ containerPort: 80 }] } }, 'ADD', 7, /portMappings\[0\]\.hostPort must be a port/],
  ['an sctp port mapping', { ...base, runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 1, protocol: 'sctp' }] } }, 'ADD', 2, /protocol "sctp" is not supported/],
  ['runtimeConfig.ips that are not strings', { ...base, runtimeConfig: { ips: [1] } }, 'ADD', 7, /runtimeConfig\.ips must be an array of CIDR strings/],
  ['GC without the attachment list', { ...base, cniVersion: '1.1.0' }, 'GC', 7, /GC needs the list of valid attachments/],
  ['GC with a malformed attachment', { ...base, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'c' }] }, 'GC', 7, /must be \{"containerID"/],
]
for (const [what, conf, command, code, message] of badConf) {
  test(`parseNetConf refuses ${what} (error ${code})`, (t) => cniFails(t, () => parseNetConf(conf, command), code, message))
}

test('compareVersions orders numerically', (t) => {
  t.true(compareVersions('1.0.0', '0.4.0') > 0)
  t.true(compareVersions('0.10.0', '0.4.0') > 0)
  t.is(compareVersions('1.1.0', '1.1.0'), 0)
})

const mapped: Array<[PlumbError, number]> = [
  [new PlumbError('USAGE', 'bad'), 7],
  [new PlumbError('FAILED', 'x'), 101],
  [new PlumbError('NOT_FOUND', 'x'), 103],
  [new PlumbError('CONFLICT', 'x'), 104],
  [new PlumbError('UNSUPPORTED', 'x'), 105],
  [new PlumbError('PERMISSION', 'x'), 106],
]
for (const [err, code] of mapped) {
  test(`a PlumbError ${err.code} is CNI error ${code}`, (t) => {
    t.is(asCniError(err).code, code)
  })
}

test('a PlumbError keeps its hint and rollback report in the error details', (t) => {
  const e = asCniError(new PlumbError('CONFLICT', 'taken', { hint: 'detach first', rolledBack: ['ip link del x'] }))
  t.deepEqual(e.toJSON('1.0.0'), { cniVersion: '1.0.0', code: 104, msg: 'taken', details: 'detach first; rolled back: ip link del x' })
})

test("the families the CNI plugin's segment prefetch reads: host-local's ranges (or its older subnet), IPv4 when they say none", (t) => {
  t.deepEqual(ipamFamilies(undefined), [4])
  t.deepEqual(ipamFamilies({ type: 'dhcp' }), [4])
  t.deepEqual(ipamFamilies({ type: 'host-local', ranges: [[{ subnet: '198.18.10.0/24' }]] }), [4])
  t.deepEqual(ipamFamilies({ type: 'host-local', ranges: [[{ subnet: '2001:db8::/64' }], [{ subnet: '198.18.10.0/24' }]] }), [4, 6])
  t.deepEqual(ipamFamilies({ type: 'host-local', ranges: [[{ subnet: '2001:db8::/64' }]] }), [6])
  t.deepEqual(ipamFamilies({ type: 'host-local', subnet: '198.18.10.0/24' }), [4])
  // malformed sections are the IPAM plugin's to refuse: the guess stays IPv4
  t.deepEqual(ipamFamilies({ type: 'host-local', ranges: 'x' }), [4])
  t.deepEqual(ipamFamilies({ type: 'host-local', ranges: [null, [null, 5, { subnet: 7 }]] }), [4])
})

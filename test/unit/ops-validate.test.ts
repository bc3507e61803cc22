// The ops' pure parts: every validator refuses bad input with exit 2 (nothing touched), and
// firstFreeEth / waitScript behave as their callers rely on.

import test from 'ava'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PlumbError } from '../../lib/errors.js'
import type { LinkInfo } from '../../lib/kernel/types.js'
import { validateAttachVeth } from '../../lib/ops/attach-veth.js'
import { firstFreeEth } from '../../lib/ops/ifnames.js'
import { validateDetach } from '../../lib/ops/detach.js'
import { validateDhcp } from '../../lib/ops/dhcp.js'
import { validateMacvlan } from '../../lib/ops/macvlan.js'
import { validateMoveDev } from '../../lib/ops/move-dev.js'
import { validateOvsPort } from '../../lib/ops/ovs-port.js'
import { needsPeerRoute, validateP2p } from '../../lib/ops/p2p-link.js'
import { validateSetIp } from '../../lib/ops/set-ip.js'
import { validateVlan } from '../../lib/ops/vlan.js'
import { waitScript } from '../../lib/ops/wait.js'
import { parseIpSpec, parseMac } from '../../lib/parse/index.js'

const G = 'netns:pt-unit'

function usage(t: import('ava').ExecutionContext, fn: () => unknown, re?: RegExp): void {
  const err = t.throws(fn)
  t.true(err instanceof PlumbError, `not a PlumbError: ${String(err)}`)
  t.is((err as PlumbError).exitCode, 2, (err as Error).message)
  if (re) t.regex((err as Error).message, re)
}

const badLinkInputs: Array<[string, Record<string, unknown>, RegExp]> = [
  ['no prefix', { ips: ['198.18.0.10'] }, /missing prefix/],
  ['prefix 33', { ips: ['198.18.0.10/33'] }, /33/],
  ['prefix 129 (v6)', { ips: ['2001:db8::10/129'] }, /129/],
  ['octet 300', { ips: ['300.1.1.1/24'] }, /300\.1\.1\.1/],
  ['v6 gateway on v4', { ips: ['198.18.0.10/24@2001:db8::1'] }, /IPv6 but/],
  ['same address twice', { ips: ['198.18.0.10/24', '198.18.0.10/24'] }, /twice/],
  ['two dhcp', { ips: ['dhcp', 'dhcp'] }, /dhcp given twice/],
  ['bad route', { routes: ['198.19.0.1/16@198.18.0.1'] }, /host bits/],
  ['multicast mac', { mac: '01:00:5e:00:00:01' }, /multicast/],
  ['zero mac', { mac: '00:00:00:00:00:00' }, /all zeros/],
  ['short mac', { mac: 'aa:bb:cc:dd:ee' }, /wrong length/],
  ['long ifname', { ifname: 'eth-is-far-too-long' }, /bytes/],
  ['ifname with /', { ifname: 'a/b' }, /"\/"/],
  ['ifname with :', { ifname: 'a:b' }, /":"/],
  ['ifname with space', { ifname: 'a b' }, /whitespace/],
  ['ifname with ;', { ifname: 'a;b' }, /";"/],
  ['ifname with $(', { ifname: 'a$(x)' }, /"\$"/],
  ['mtu 0', { mtu: '0' }, /MTU/],
  ['mtu 70000', { mtu: 70000 }, /MTU/],
  ['v6 with mtu 1000', { ips: ['2001:db8::10/64'], mtu: 1000 }, /too small for IPv6/],
  ['bad guest', { guest: 'netns:' }, /guest|netns/],
]

for (const [name, extra, re] of badLinkInputs) {
  test(`validateAttachVeth refuses: ${name}`, (t) => usage(t, () => validateAttachVeth({ guest: G, bridge: 'br0', ...extra } as never), re))
  test(`validateOvsPort refuses: ${name}`, (t) => usage(t, () => validateOvsPort({ guest: G, bridge: 'ovs0', ...extra } as never), re))
  test(`validateMacvlan refuses: ${name}`, (t) => usage(t, () => validateMacvlan({ guest: G, parent: 'pt-nic', ...extra } as never), re))
}

test('validateAttachVeth: bridge, -l and --vlan are checked too', (t) => {
  usage(t, () => validateAttachVeth({ guest: G, bridge: 'br/0' }), /bridge name/)
  usage(t, () => validateAttachVeth({ guest: G, bridge: 'br0', hostIfname: 'x'.repeat(16) }), /host interface name/)
  usage(t, () => validateAttachVeth({ guest: G, bridge: 'br0', vlan: 4095 }), /VLAN/)
})

test('validateAttachVeth: a good spec is normalised', (t) => {
  const v = validateAttachVeth({ guest: G, bridge: 'br0', ips: ['198.18.0.10/24@198.18.1.1', '2001:db8::10/64'], mac: 'seed:x', mtu: '1400', ifname: 'eth5', routes: ['198.19.0.0/16@198.18.0.254'] })
  t.deepEqual(v.guest, { kind: 'netns', name: 'pt-unit' })
  t.is(v.statics.length, 2)
  t.is(v.statics[0]!.gatewayOnLink, true)
  t.is(v.mac, parseMac('seed:x'))
  t.is(v.mtu, 1400)
  t.deepEqual(v.routes, [{ family: 4, dst: '198.19.0.0/16', gateway: '198.18.0.254' }])
})

test('validateSetIp: needs something to set, static only, valid ifname', (t) => {
  usage(t, () => validateSetIp({ guest: G, ifname: 'eth1' }), /at least one/)
  usage(t, () => validateSetIp({ guest: G, ifname: 'eth1', ips: ['dhcp'] }), /static/)
  usage(t, () => validateSetIp({ guest: G, ifname: 'e:1', ips: ['198.18.0.1/24'] }), /interface name/)
  usage(t, () => validateSetIp({ guest: G, ifname: 'eth1', ips: ['198.18.0.1'] }), /missing prefix/)
  t.is(validateSetIp({ guest: G, ifname: 'eth1', routes: ['198.19.0.0/16'] }).ifname, 'eth1')
})

test('validateDetach: ifname xor --all', (t) => {
  usage(t, () => validateDetach({ guest: G }), /--all/)
  usage(t, () => validateDetach({ guest: G, ifname: 'eth1', all: true }), /not both/)
  usage(t, () => validateDetach({ guest: G, ifname: 'eth 1' }))
  t.deepEqual(validateDetach({ guest: G, all: true }), { guest: { kind: 'netns', name: 'pt-unit' }, all: true })
})

test('validateP2p: host only as the second side, families agree, no gateways, distinct addresses', (t) => {
  usage(t, () => validateP2p({ a: 'host', b: G }), /host/)
  usage(t, () => validateP2p({ a: G, b: 'netns:pt-b', ipA: '198.18.5.0/31', ipB: '2001:db8::1/64' }), /IPv4 but/)
  usage(t, () => validateP2p({ a: G, b: 'netns:pt-b', ipA: '198.18.5.0/31@198.18.5.1' }), /no @gateway/)
  usage(t, () => validateP2p({ a: G, b: 'netns:pt-b', ipA: '198.18.5.0/31', ipB: '198.18.5.0/31' }), /same address/)
  usage(t, () => validateP2p({ a: G, b: 'netns:pt-b', ipA: 'dhcp' }), /static/)
  usage(t, () => validateP2p({ a: G, b: 'netns:pt-b', mtu: 10 }), /MTU/)
  usage(t, () => validateP2p({ a: G, b: 'netns:pt-b', ifnameA: 'x'.repeat(16) }))
  t.deepEqual(validateP2p({ a: G, b: 'host' }).b, { kind: 'host' })
})

test('validateOvsPort: --tag and --trunks exclude each other; VIDs checked', (t) => {
  usage(t, () => validateOvsPort({ guest: G, bridge: 'ovs0', tag: 10, trunks: '20' }), /exclude/)
  usage(t, () => validateOvsPort({ guest: G, bridge: 'ovs0', tag: 0 }), /VLAN/)
  usage(t, () => validateOvsPort({ guest: G, bridge: 'ovs0', trunks: '10,5000' }), /VLAN/)
  usage(t, () => validateOvsPort({ guest: G, bridge: 'ovs0', trunks: '30-20' }), /reversed/)
  t.deepEqual(validateOvsPort({ guest: G, bridge: 'ovs0', trunks: '10,20-22' }).trunks, [10, 20, 21, 22])
})

test('validateVlan, validateMoveDev, validateMacvlan, validateDhcp: their own fields', (t) => {
  usage(t, () => validateVlan({ guest: G, parent: 'pt-nic', vid: 4095 } as never), /VLAN/)
  usage(t, () => validateVlan({ guest: G, parent: 'a/b', vid: 10 } as never), /parent/)
  usage(t, () => validateMoveDev({ guest: G, device: '' } as never), /empty/)
  usage(t, () => validateMacvlan({ guest: G, parent: 'pt-nic', mode: 'bogus' }))
  usage(t, () => validateDhcp({ guest: G, ifname: 'eth1', client: 'bogus' as never }), /unknown DHCP client/)
  usage(t, () => validateDhcp({ guest: G, ifname: 'eth1', timeout: 0 }), /timeout/)
  usage(t, () => validateDhcp({ guest: G, ifname: 'eth1', hostname: 'bad_host!' }), /hostname/)
})

const link = (name: string, index: number): LinkInfo => ({ index, name, mtu: 1500, up: true, operState: 'UP' })

test('firstFreeEth: eth1 first (eth0 is Docker\'s), fills holes, honours skip', (t) => {
  t.is(firstFreeEth([link('lo', 1)]), 'eth1')
  t.is(firstFreeEth([link('lo', 1), link('eth0', 2)]), 'eth1')
  t.is(firstFreeEth([link('lo', 1), link('eth1', 2), link('eth3', 3)]), 'eth2')
  t.is(firstFreeEth([link('eth1', 2)], new Set(['eth2', 'eth3'])), 'eth4')
})

test('waitScript is valid sh (sh -n) and names the interface and the timeout', (t) => {
  const dir = mkdtempSync('/tmp/pt-wait-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [ifname, timeout] of [['eth1', 30], ['eth2', 1]] as const) {
    const script = waitScript(ifname, timeout)
    const file = join(dir, `${ifname}.sh`)
    writeFileSync(file, script)
    t.notThrows(() => execFileSync('sh', ['-n', file], { stdio: 'pipe' }))
    t.true(script.includes(`/sys/class/net/${ifname}/operstate`))
    t.true(script.includes(`-ge ${timeout * 10} ]`))
  }
  t.throws(() => waitScript('eth1;rm'), { instanceOf: PlumbError })
})

test('waitScript times out with exit 1 on an interface that is not there', (t) => {
  const script = waitScript('pt-nosuchif', 1)
  const err = t.throws(() => execFileSync('sh', ['-c', script], { stdio: 'pipe', timeout: 10_000 })) as { status?: number; stderr?: Buffer }
  t.is(err.status, 1)
  t.regex(String(err.stderr), /not ready after 1s/)
})

test('needsPeerRoute: a /32 always, a subnet without the peer; the peer at another prefix is no bad input (it was: parsed as a spec)', (t) => {
  const ip = (s: string) => parseIpSpec(s) as Extract<ReturnType<typeof parseIpSpec>, { kind: 'static' }>
  t.false(needsPeerRoute(ip('198.18.5.0/31'), ip('198.18.5.1/31')))
  t.true(needsPeerRoute(ip('198.18.5.2/32'), ip('198.18.5.1/32')))
  t.true(needsPeerRoute(ip('198.18.5.1/30'), ip('198.18.6.1/30')))
  // 198.18.5.0 is the network address of a /30: as the peer of a /30 end it is still in its subnet
  t.false(needsPeerRoute(ip('198.18.5.1/30'), ip('198.18.5.0/31')))
  t.false(needsPeerRoute(ip('2001:db8::1/64'), ip('2001:db8::2/127')))
})

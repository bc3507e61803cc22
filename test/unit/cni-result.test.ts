// Table tests for CNI results (lib/cni/result.ts): reading every version, writing the one the
// config asks for, and turning an IPAM answer into the op's IP and route specs.

import test from 'ava'
import { CniError } from '../../lib/cni/errors.js'
import { composeResult, formatResult, ipamToSpecs, parseResult } from '../../lib/cni/result.js'
import type { CniResult } from '../../lib/cni/result.js'
import { emptyResult } from '../../lib/ops/result.js'

const canonical: CniResult = {
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
  ips: [
    { address: '198.18.0.5/24', gateway: '198.18.0.1', interface: 0 },
    { address: '2001:db8::5/64', interface: 0 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '198.18.0.1' }],
  dns: { nameservers: ['198.18.0.53'], search: ['example'] },
}

// The same result as each version writes it.
const written: Array<[string, Record<string, unknown>]> = [
  [
    '0.3.1',
    {
      cniVersion: '0.3.1',
      interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
      ips: [
        { version: '4', address: '198.18.0.5/24', gateway: '198.18.0.1', interface: 0 },
        { version: '6', address: '2001:db8::5/64', interface: 0 },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '198.18.0.1' }],
      dns: { nameservers: ['198.18.0.53'], search: ['example'] },
    },
  ],
  [
    '0.4.0',
    {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
      ips: [
        { version: '4', address: '198.18.0.5/24', gateway: '198.18.0.1', interface: 0 },
        { version: '6', address: '2001:db8::5/64', interface: 0 },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '198.18.0.1' }],
      dns: { nameservers: ['198.18.0.53'], search: ['example'] },
    },
  ],
  [
    '1.0.0',
    {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
      ips: [
        { address: '198.18.0.5/24', gateway: '198.18.0.1', interface: 0 },
        { address: '2001:db8::5/64', interface: 0 },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '198.18.0.1' }],
      dns: { nameservers: ['198.18.0.53'], search: ['example'] },
    },
  ],
]
for (const [version, json] of written) {
  test(`formatResult writes ${version}`, (t) => {
    t.deepEqual(formatResult(canonical, version as '0.3.1'), json)
  })
  test(`parseResult reads ${version} back`, (t) => {
    t.deepEqual(parseResult(json, 'x'), canonical)
  })
}

test("formatResult writes 1.1.0's new fields (interface mtu, route mtu/table/scope...) and drops them before", (t) => {
  const r: CniResult = { ...canonical, interfaces: [{ name: 'eth0', mtu: 1400, sandbox: '/n', pciID: '0000:00:01.0' }], routes: [{ dst: '198.19.0.0/16', gw: '198.18.0.1', mtu: 1400, table: 100, scope: 0, priority: 5, advmss: 1360 }] }
  const v11 = formatResult(r, '1.1.0')
  t.deepEqual(v11.interfaces, [{ name: 'eth0', mtu: 1400, sandbox: '/n', pciID: '0000:00:01.0' }])
  t.deepEqual(v11.routes, [{ dst: '198.19.0.0/16', gw: '198.18.0.1', mtu: 1400, advmss: 1360, priority: 5, table: 100, scope: 0 }])
  const v1 = formatResult(r, '1.0.0')
  t.deepEqual(v1.interfaces, [{ name: 'eth0', sandbox: '/n' }])
  t.deepEqual(v1.routes, [{ dst: '198.19.0.0/16', gw: '198.18.0.1' }])
  t.deepEqual(parseResult(v11, 'x').routes, r.routes, '1.1.0 read back whole')
})

test('parseResult reads 0.2.0 (ip4/ip6 sections): what an old IPAM plugin answers', (t) => {
  t.deepEqual(
    parseResult({ cniVersion: '0.2.0', ip4: { ip: '198.18.0.5/24', gateway: '198.18.0.1', routes: [{ dst: '0.0.0.0/0' }] }, ip6: { ip: '2001:db8::5/64' }, dns: {} }, 'x'),
    { interfaces: [], ips: [{ address: '198.18.0.5/24', gateway: '198.18.0.1' }, { address: '2001:db8::5/64' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} },
  )
})

test("parseResult reads host-local's own 1.0.0 answer (no interfaces, no interface index)", (t) => {
  const hostLocal = { cniVersion: '1.0.0', ips: [{ address: '198.18.77.2/24', gateway: '198.18.77.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} }
  t.deepEqual(parseResult(hostLocal, 'x'), { interfaces: [], ips: [{ address: '198.18.77.2/24', gateway: '198.18.77.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} })
})

const malformed: Array<[string, unknown, RegExp]> = [
  ['not an object', [], /not a JSON object/],
  ['an address without prefix', { cniVersion: '1.0.0', ips: [{ address: '198.18.0.5' }] }, /ips\[0\]\.address "198\.18\.0\.5" is not an address\/prefix/],
  ['a bad gateway', { cniVersion: '1.0.0', ips: [{ address: '198.18.0.5/24', gateway: 'x' }] }, /ips\[0\]\.gateway "x" is not an IP address/],
  // what the plain dotted-quad path must not let through either (ipaddr.js has the last word)
  ['an octet over 255', { cniVersion: '1.0.0', ips: [{ address: '198.18.0.256/24' }] }, /ips\[0\]\.address "198\.18\.0\.256\/24" is not an address\/prefix/],
  ['a prefix over 32', { cniVersion: '1.0.0', ips: [{ address: '198.18.0.5/33' }] }, /is not an address\/prefix/],
  ['a negative prefix', { cniVersion: '1.0.0', ips: [{ address: '198.18.0.5/-1' }] }, /is not an address\/prefix/],
  ['five octets as a gateway', { cniVersion: '1.0.0', ips: [{ address: '198.18.0.5/24', gateway: '198.18.0.1.5' }] }, /ips\[0\]\.gateway "198\.18\.0\.1\.5" is not an IP address/],
  ['a route to a bad network', { cniVersion: '1.0.0', ips: [], routes: [{ dst: '198.18.0.0/' }] }, /routes\[0\]\.dst/],
  ['an interface index out of range', { cniVersion: '1.0.0', interfaces: [{ name: 'a' }], ips: [{ address: '198.18.0.5/24', interface: 1 }] }, /ips\[0\]\.interface 1 names no interface/],
  ['an interface without name', { cniVersion: '1.0.0', interfaces: [{}], ips: [] }, /interfaces\[0\] has no name/],
  ['a route without dst', { cniVersion: '1.0.0', ips: [], routes: [{ gw: '198.18.0.1' }] }, /routes\[0\]\.dst/],
]
for (const [what, json, message] of malformed) {
  test(`parseResult refuses ${what} (error 6)`, (t) => {
    const err = t.throws(() => parseResult(json, 'the IPAM result'), { instanceOf: CniError }) as CniError
    t.is(err.code, 6)
    t.regex(err.message, /^the IPAM result: /)
    t.regex(err.message, message)
  })
}

const specs: Array<[string, Partial<CniResult>, { ips: string[]; routes: string[] }]> = [
  ['an address and a default route via its gateway', { ips: [{ address: '198.18.0.5/24', gateway: '198.18.0.1' }], routes: [{ dst: '0.0.0.0/0' }] }, { ips: ['198.18.0.5/24@198.18.0.1'], routes: [] }],
  ['a gateway without a default route is only information', { ips: [{ address: '198.18.0.5/24', gateway: '198.18.0.1' }], routes: [] }, { ips: ['198.18.0.5/24'], routes: [] }],
  ['a default route with its own gw', { ips: [{ address: '198.18.0.5/24', gateway: '198.18.0.1' }], routes: [{ dst: '0.0.0.0/0', gw: '198.18.0.254' }] }, { ips: ['198.18.0.5/24@198.18.0.254'], routes: [] }],
  ['a default route without any gateway is a device route', { ips: [{ address: '198.18.0.5/24' }], routes: [{ dst: '0.0.0.0/0' }] }, { ips: ['198.18.0.5/24'], routes: ['0.0.0.0/0'] }],
  ['other routes, with and without gw', { ips: [{ address: '198.18.0.5/24', gateway: '198.18.0.1' }], routes: [{ dst: '198.19.0.0/16' }, { dst: '198.19.1.0/24', gw: '198.18.0.9' }] }, { ips: ['198.18.0.5/24'], routes: ['198.19.0.0/16@198.18.0.1', '198.19.1.0/24@198.18.0.9'] }],
  [
    'dual stack: one default per family, on the first address of each',
    { ips: [{ address: '198.18.0.5/24', gateway: '198.18.0.1' }, { address: '198.18.1.5/24' }, { address: '2001:db8::5/64', gateway: '2001:db8::1' }], routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }] },
    { ips: ['198.18.0.5/24@198.18.0.1', '198.18.1.5/24', '2001:db8::5/64@2001:db8::1'], routes: [] },
  ],
]
for (const [what, r, want] of specs) {
  test(`ipamToSpecs: ${what}`, (t) => {
    t.deepEqual(ipamToSpecs({ interfaces: [], ips: [], routes: [], dns: {}, ...r }), want)
  })
}

test("composeResult: prevResult first, then the op's host end and guest end; IPAM's addresses point at the guest end", (t) => {
  const prev: CniResult = { interfaces: [{ name: 'cni0' }, { name: 'eth0', sandbox: '/n' }], ips: [{ address: '198.18.9.2/24', interface: 1 }], routes: [{ dst: '0.0.0.0/0', gw: '198.18.9.1' }], dns: { domain: 'a' } }
  const op = emptyResult('attach-veth', '/n', false)
  op.interfaces.push({ name: 'pl1234', netns: 'host', kind: 'veth', mtu: 1500 }, { name: 'net1', netns: '/n', kind: 'veth', mac: '02:00:00:00:00:02', mtu: 1500 })
  const ipam: CniResult = { interfaces: [], ips: [{ address: '198.18.10.2/24', gateway: '198.18.10.1' }], routes: [{ dst: '198.19.0.0/16' }], dns: {} }
  t.deepEqual(composeResult(prev, op, { netns: '/n', ipam, dns: { nameservers: ['198.18.0.53'] } }), {
    interfaces: [{ name: 'cni0' }, { name: 'eth0', sandbox: '/n' }, { name: 'pl1234', mtu: 1500 }, { name: 'net1', mac: '02:00:00:00:00:02', mtu: 1500, sandbox: '/n' }],
    ips: [{ address: '198.18.9.2/24', interface: 1 }, { address: '198.18.10.2/24', gateway: '198.18.10.1', interface: 3 }],
    routes: [{ dst: '0.0.0.0/0', gw: '198.18.9.1' }, { dst: '198.19.0.0/16' }],
    dns: { domain: 'a', nameservers: ['198.18.0.53'] },
  })
  t.is(prev.interfaces.length, 2, 'prevResult itself is not changed')
})

test('composeResult: without IPAM the `ips` capability addresses are listed', (t) => {
  const op = emptyResult('macvlan', '/n', false)
  op.interfaces.push({ name: 'eth0', netns: '/n', kind: 'macvlan' })
  t.deepEqual(composeResult(undefined, op, { netns: '/n', staticIps: ['198.18.0.7/24'] }), {
    interfaces: [{ name: 'eth0', sandbox: '/n' }],
    ips: [{ address: '198.18.0.7/24', interface: 0 }],
    routes: [],
    dns: {},
  })
})

// Table tests for expose's PORTSPEC, masquerade's <bridge|CIDR>, isolate's --allow pair and
// expose's --to (lib/parse/port.ts): every bad input is exit 2 with a hint, before anything runs.

import test from 'ava'
import { usage } from '../helpers/assert.js'
import type { Want } from '../helpers/assert.js'
import { formatMapping, parseGuestAddress, parseGuestPair, parseMasqueradeSource, parseNetwork, parsePortSpec, parsePortSpecs } from '../../lib/parse/index.js'
import type { PortMapping } from '../../lib/parse/index.js'

const valid: Array<[string, PortMapping[]]> = [
  ['80', [{ proto: 'tcp', port: 80 }]],
  ['80/udp', [{ proto: 'udp', port: 80 }]],
  ['80/TCP', [{ proto: 'tcp', port: 80 }]],
  ['8080:80', [{ proto: 'tcp', hostPort: 8080, port: 80 }]],
  ['5353:53/udp', [{ proto: 'udp', hostPort: 5353, port: 53 }]],
  ['127.0.0.1:8080:80', [{ proto: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, port: 80 }]],
  ['127.0.0.1::80', [{ proto: 'tcp', hostIp: '127.0.0.1', port: 80 }]],
  ['198.18.0.1::53/udp', [{ proto: 'udp', hostIp: '198.18.0.1', port: 53 }]],
  // 0.0.0.0 is "every address", as Docker reads it
  ['0.0.0.0:8080:80', [{ proto: 'tcp', hostPort: 8080, port: 80 }]],
  [':80', [{ proto: 'tcp', port: 80 }]],
  ['1:65535', [{ proto: 'tcp', hostPort: 1, port: 65535 }]],
  [' 8080:80 ', [{ proto: 'tcp', hostPort: 8080, port: 80 }]],
  [
    '8000-8001:80-81',
    [
      { proto: 'tcp', hostPort: 8000, port: 80 },
      { proto: 'tcp', hostPort: 8001, port: 81 },
    ],
  ],
  [
    '80-81/udp',
    [
      { proto: 'udp', port: 80 },
      { proto: 'udp', port: 81 },
    ],
  ],
]

for (const [input, want] of valid) {
  test(`parsePortSpec accepts ${JSON.stringify(input)}`, (t) => {
    t.deepEqual(parsePortSpec(input), want)
  })
}

const invalid: Array<[string, Want]> = [
  ['', { message: /empty PORTSPEC/ }],
  ['0', { message: /guest port 0 out of range/, hint: /1\.\.65535/ }],
  ['65536', { message: /guest port 65536 out of range/, hint: /1\.\.65535/ }],
  ['0:80', { message: /host port 0 out of range/ }],
  ['8080:65536', { message: /guest port 65536 out of range/ }],
  ['http', { message: /invalid guest port "http"/, hint: /8080:80/ }],
  ['8080:', { message: /missing guest port/ }],
  ['80/sctp', { message: /unknown protocol "sctp"/, hint: /tcp.*udp/ }],
  ['80/', { message: /unknown protocol ""/ }],
  ['80/tcp/udp', { message: /invalid guest port "80\/tcp"/ }],
  ['1:2:3:4', { message: /too many ":"/, hint: /HOSTIP:\[HOSTPORT\]:PORT/ }],
  ['080', { message: /leading zero/, hint: /did you mean 80\?/ }],
  ['256.0.0.1:80:80', { message: /octet 256/ }],
  ['[::1]:8080:80', { message: /IPv6 host address.*IPv4 only/ }],
  ['224.0.0.1:80:80', { message: /not a unicast address/ }],
  ['81-80', { message: /runs backwards/, hint: /did you mean 80-81\?/ }],
  ['8000-8002:80-81', { message: /differ in length/ }],
  ['1-2000', { message: /has 2000 ports/, hint: /at most 1000/ }],
  ['-80', { message: /invalid guest port ""/ }],
]

for (const [input, want] of invalid) {
  test(`parsePortSpec refuses ${JSON.stringify(input)}`, (t) => usage(t, () => parsePortSpec(input), want))
}

test('parsePortSpecs refuses the same host port twice, and the same auto port twice', (t) => {
  usage(t, () => parsePortSpecs(['8080:80', '8080:81']), { message: /8080:81\/tcp is given twice/ })
  usage(t, () => parsePortSpecs(['80', '80/tcp']), { message: /80\/tcp is given twice/ })
  t.is(parsePortSpecs(['8080:80', '8080:80/udp', '80']).length, 3, 'tcp and udp are different ports')
})

test('formatMapping writes Docker\'s spelling back', (t) => {
  for (const s of ['8080:80/tcp', '127.0.0.1:8080:80/udp', '127.0.0.1::80/tcp', '80/tcp']) t.is(formatMapping(parsePortSpec(s)[0]!), s)
})

test('parseNetwork: an IPv4 CIDR with its prefix and no host bits', (t) => {
  t.deepEqual(parseNetwork('198.18.0.0/24'), { cidr: '198.18.0.0/24', address: '198.18.0.0', prefix: 24 })
  usage(t, () => parseNetwork('198.18.0.0'), { message: /missing prefix length in CIDR "198\.18\.0\.0"/, hint: /did you mean 198\.18\.0\.0\/24\?/ })
  usage(t, () => parseNetwork('198.18.0.5/24'), { message: /host bits set/, hint: /did you mean 198\.18\.0\.0\/24\?/ })
  usage(t, () => parseNetwork('0.0.0.0/0'), { message: /every address/ })
  usage(t, () => parseNetwork('2001:db8::/64'), { message: /IPv6.*IPv4 only/ })
  usage(t, () => parseNetwork('198.18.0.0/33'), { message: /prefix length \/33 out of range/ })
})

test('parseMasqueradeSource: a bridge name or a CIDR', (t) => {
  t.deepEqual(parseMasqueradeSource('br0'), { kind: 'bridge', bridge: 'br0' })
  t.deepEqual(parseMasqueradeSource('198.18.0.0/16'), { kind: 'cidr', network: { cidr: '198.18.0.0/16', address: '198.18.0.0', prefix: 16 } })
  // an address with no prefix is a CIDR without its prefix, not a bridge called "198.18.0.0"
  usage(t, () => parseMasqueradeSource('198.18.0.0'), { message: /missing prefix length/, hint: /198\.18\.0\.0\/24/ })
  usage(t, () => parseMasqueradeSource('a-very-long-bridge-name'), { message: /bytes, the kernel allows at most 15/ })
})

test('parseGuestPair: two different guests', (t) => {
  t.deepEqual(parseGuestPair('web,netns:db'), [
    { kind: 'container', engine: 'auto', name: 'web' },
    { kind: 'netns', name: 'db' },
  ])
  usage(t, () => parseGuestPair('web'), { message: /not a pair/, hint: /--allow GUEST,GUEST/ })
  usage(t, () => parseGuestPair('web,db,x'), { message: /not a pair/ })
  usage(t, () => parseGuestPair('web,'), { message: /not a pair/ })
  usage(t, () => parseGuestPair('web,web'), { message: /the same guest twice/ })
  usage(t, () => parseGuestPair('web,bad/name'), { message: /not absolute/ })
})

test('parseGuestAddress: --to is one IPv4 address', (t) => {
  t.is(parseGuestAddress('198.18.0.10'), '198.18.0.10')
  usage(t, () => parseGuestAddress('198.18.0.10/24'), { message: /an address, not a CIDR/, hint: /did you mean 198\.18\.0\.10\?/ })
  usage(t, () => parseGuestAddress('2001:db8::1'), { message: /IPv6/ })
  usage(t, () => parseGuestAddress('web'), { message: /invalid IPv4 address/ })
})

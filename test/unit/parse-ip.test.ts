// Table tests for IP specs and route specs (lib/parse/ip.ts).

import test from 'ava'
import { usage } from '../helpers/assert.js'
import type { Want } from '../helpers/assert.js'
import { parseIpSpec, parseRouteSpec } from '../../lib/parse/index.js'

const valid: Array<[string, ReturnType<typeof parseIpSpec>]> = [
  ['dhcp', { kind: 'dhcp' }],
  ['DHCP', { kind: 'dhcp' }],
  ['198.18.0.10/24', { kind: 'static', family: 4, address: '198.18.0.10', prefix: 24, cidr: '198.18.0.10/24', network: '198.18.0.0/24', gatewayOnLink: false }],
  ['198.18.0.10/24@198.18.0.1', { kind: 'static', family: 4, address: '198.18.0.10', prefix: 24, cidr: '198.18.0.10/24', network: '198.18.0.0/24', gateway: '198.18.0.1', gatewayOnLink: false }],
  // gateway outside the subnet: on-link host route needed (pipework did the same)
  ['198.18.0.10/24@198.19.0.1', { kind: 'static', family: 4, address: '198.18.0.10', prefix: 24, cidr: '198.18.0.10/24', network: '198.18.0.0/24', gateway: '198.19.0.1', gatewayOnLink: true }],
  ['198.18.0.10/32@198.18.0.1', { kind: 'static', family: 4, address: '198.18.0.10', prefix: 32, cidr: '198.18.0.10/32', network: '198.18.0.10/32', gateway: '198.18.0.1', gatewayOnLink: true }],
  // /31 (RFC 3021): both addresses are hosts
  ['198.18.0.0/31', { kind: 'static', family: 4, address: '198.18.0.0', prefix: 31, cidr: '198.18.0.0/31', network: '198.18.0.0/31', gatewayOnLink: false }],
  ['198.18.0.1/31@198.18.0.0', { kind: 'static', family: 4, address: '198.18.0.1', prefix: 31, cidr: '198.18.0.1/31', network: '198.18.0.0/31', gateway: '198.18.0.0', gatewayOnLink: false }],
  // .0 inside a /23 is an ordinary host
  ['198.18.1.0/23', { kind: 'static', family: 4, address: '198.18.1.0', prefix: 23, cidr: '198.18.1.0/23', network: '198.18.0.0/23', gatewayOnLink: false }],
  ['  198.18.0.10/24  ', { kind: 'static', family: 4, address: '198.18.0.10', prefix: 24, cidr: '198.18.0.10/24', network: '198.18.0.0/24', gatewayOnLink: false }],
  ['2001:db8::10/64', { kind: 'static', family: 6, address: '2001:db8::10', prefix: 64, cidr: '2001:db8::10/64', network: '2001:db8::/64', gatewayOnLink: false }],
  ['2001:DB8::0001/64', { kind: 'static', family: 6, address: '2001:db8::1', prefix: 64, cidr: '2001:db8::1/64', network: '2001:db8::/64', gatewayOnLink: false }],
  ['2001:0db8:0000:0000:0000:0000:0000:0010/64@2001:db8::1', { kind: 'static', family: 6, address: '2001:db8::10', prefix: 64, cidr: '2001:db8::10/64', network: '2001:db8::/64', gateway: '2001:db8::1', gatewayOnLink: false }],
  ['2001:db8:1:2:3:4:5:6/48', { kind: 'static', family: 6, address: '2001:db8:1:2:3:4:5:6', prefix: 48, cidr: '2001:db8:1:2:3:4:5:6/48', network: '2001:db8:1::/48', gatewayOnLink: false }],
  ['2001:db8::10/64@2001:db9::1', { kind: 'static', family: 6, address: '2001:db8::10', prefix: 64, cidr: '2001:db8::10/64', network: '2001:db8::/64', gateway: '2001:db9::1', gatewayOnLink: true }],
  // link-local gateways are on-link by definition
  ['2001:db8::10/64@fe80::1', { kind: 'static', family: 6, address: '2001:db8::10', prefix: 64, cidr: '2001:db8::10/64', network: '2001:db8::/64', gateway: 'fe80::1', gatewayOnLink: false }],
  ['2001:db8::10/128', { kind: 'static', family: 6, address: '2001:db8::10', prefix: 128, cidr: '2001:db8::10/128', network: '2001:db8::10/128', gatewayOnLink: false }],
  ['2001:db8:0:0:1:0:0:1/64', { kind: 'static', family: 6, address: '2001:db8::1:0:0:1', prefix: 64, cidr: '2001:db8::1:0:0:1/64', network: '2001:db8::/64', gatewayOnLink: false }],
]

for (const [input, want] of valid) {
  test(`parseIpSpec accepts ${JSON.stringify(input)}`, (t) => {
    t.deepEqual(parseIpSpec(input), want)
  })
}

const invalid: Array<[string, Want]> = [
  ['198.18.0.10', { message: /missing prefix length.*"198\.18\.0\.10"/, hint: /^did you mean 198\.18\.0\.10\/24\?$/ }],
  ['198.18.0.10@198.18.0.1', { message: /missing prefix length/, hint: /did you mean 198\.18\.0\.10\/24@198\.18\.0\.1\?/ }],
  ['2001:db8::10', { message: /missing prefix length.*2001:db8::10/, hint: /did you mean 2001:db8::10\/64\?/ }],
  ['198.18.0.10/33', { message: /prefix length \/33 out of range for IPv4/, hint: /0\.\.32/ }],
  ['2001:db8::10/129', { message: /prefix length \/129 out of range for IPv6/, hint: /0\.\.128/ }],
  ['198.18.0.10/', { message: /invalid prefix length/ }],
  ['198.18.0.10/2a', { message: /invalid prefix length "\/2a"/ }],
  ['198.18.0.10/024', { message: /invalid prefix length "\/024"/ }],
  ['198.18.0.10/0', { message: /\/0.*every address on-link/, hint: /198\.18\.0\.10\/24/ }],
  ['300.1.1.1/24', { message: /invalid IPv4 address "300\.1\.1\.1": octet 300/ }],
  ['198.18.0/24', { message: /invalid IPv4 address "198\.18\.0"/ }],
  ['198.18.0.10.1/24', { message: /invalid IPv4 address/ }],
  ['1198.18.0.10/24', { message: /invalid IPv4 address "1198\.18\.0\.10"/ }],
  ['198.18..10/24', { message: /invalid IPv4 address/ }],
  ['198.18.0.+1/24', { message: /invalid IPv4 address/ }],
  ['198.18.0.1e1/24', { message: /invalid IPv4 address/ }],
  ['198.18.0.10/+8', { message: /invalid prefix length "\/\+8"/ }],
  ['198.18.0.10/1e1', { message: /invalid prefix length/ }],
  ['web/24', { message: /invalid IPv4 address "web"/ }],
  ['', { message: /missing address/ }],
  ['/24', { message: /missing address/ }],
  ['2001:db8:::1/64', { message: /invalid IPv6 address "2001:db8:::1"/ }],
  ['2001:db8::g/64', { message: /invalid IPv6 address/ }],
  ['198.018.0.10/24', { message: /ambiguous IPv4 address "198\.018\.0\.10": leading zeros/, hint: /did you mean 198\.18\.0\.10\?/ }],
  ['fe80::1%eth0/64', { message: /zone id not allowed.*fe80::1%eth0/, hint: /%eth0/ }],
  ['::ffff:198.18.0.10/120', { message: /IPv4-mapped/, hint: /198\.18\.0\.10/ }],
  ['198.18.0.10/24@2001:db8::1', { message: /gateway 2001:db8::1 is IPv6 but .* is IPv4/ }],
  ['2001:db8::10/64@198.18.0.1', { message: /gateway 198\.18\.0\.1 is IPv4 but .* is IPv6/ }],
  ['198.18.0.10/24@198.18.0.10', { message: /gateway 198\.18\.0\.10 is the address itself/ }],
  ['2001:db8::10/64@2001:DB8::10', { message: /gateway 2001:db8::10 is the address itself/ }],
  ['198.18.0.10/24@198.18.0.255', { message: /gateway 198\.18\.0\.255 is the broadcast address/ }],
  ['198.18.0.10/24@', { message: /empty gateway/ }],
  ['198.18.0.10/24@198.18.0.1@198.18.0.2', { message: /more than one "@"/ }],
  ['198.18.0.10/24@198.18.0.1/24', { message: /gateway "198\.18\.0\.1\/24".*must not have a prefix/ }],
  ['198.18.0.10/24@0.0.0.0', { message: /gateway 0\.0\.0\.0 .* unspecified/ }],
  ['198.18.0.0/24', { message: /198\.18\.0\.0 is the network address of 198\.18\.0\.0\/24/, hint: /did you mean 198\.18\.0\.1\/24\?/ }],
  ['198.18.0.255/24', { message: /198\.18\.0\.255 is the broadcast address of 198\.18\.0\.0\/24/, hint: /did you mean 198\.18\.0\.1\/24\?/ }],
  ['198.18.0.4/30', { message: /network address of 198\.18\.0\.4\/30/, hint: /198\.18\.0\.5\/30/ }],
  ['198.18.0.7/30', { message: /broadcast address of 198\.18\.0\.4\/30/ }],
  ['198.18.1.255/23', { message: /broadcast address of 198\.18\.0\.0\/23/, hint: /198\.18\.0\.1\/23/ }],
  ['0.0.0.0/24', { message: /unspecified/ }],
  ['127.0.0.1/8', { message: /loopback/ }],
  ['224.0.0.1/24', { message: /multicast/ }],
  ['255.255.255.255/32', { message: /limited broadcast/ }],
  ['::/64', { message: /unspecified/ }],
  ['::1/128', { message: /loopback/ }],
  ['ff02::1/64', { message: /multicast/ }],
]

for (const [input, want] of invalid) {
  test(`parseIpSpec refuses ${JSON.stringify(input)}`, (t) => usage(t, () => parseIpSpec(input), want))
}

const routes: Array<[string, ReturnType<typeof parseRouteSpec>]> = [
  ['default@198.18.0.1', { family: 4, dst: 'default', gateway: '198.18.0.1' }],
  ['default@2001:db8::1', { family: 6, dst: 'default', gateway: '2001:db8::1' }],
  ['0.0.0.0/0', { family: 4, dst: 'default' }],
  ['::/0@fe80::1', { family: 6, dst: 'default', gateway: 'fe80::1' }],
  ['198.19.0.0/16@198.18.0.1', { family: 4, dst: '198.19.0.0/16', gateway: '198.18.0.1' }],
  ['198.19.0.0/16', { family: 4, dst: '198.19.0.0/16' }],
  ['198.19.0.5/32@198.18.0.1', { family: 4, dst: '198.19.0.5/32', gateway: '198.18.0.1' }],
  ['2001:DB8:1::/48@2001:db8::1', { family: 6, dst: '2001:db8:1::/48', gateway: '2001:db8::1' }],
  ['2001:db8::5/128', { family: 6, dst: '2001:db8::5/128' }],
]

for (const [input, want] of routes) {
  test(`parseRouteSpec accepts ${JSON.stringify(input)}`, (t) => {
    t.deepEqual(parseRouteSpec(input), want)
  })
}

const badRoutes: Array<[string, Want]> = [
  ['198.19.0.5', { message: /missing prefix length in route destination "198\.19\.0\.5"/, hint: /did you mean 198\.19\.0\.5\/32/ }],
  ['2001:db8::5@2001:db8::1', { message: /missing prefix length/, hint: /did you mean 2001:db8::5\/128@2001:db8::1/ }],
  ['198.19.0.5/16@198.18.0.1', { message: /"198\.19\.0\.5\/16" has host bits set/, hint: /^did you mean 198\.19\.0\.0\/16\?$/ }],
  ['2001:db8:1::1/48', { message: /host bits set/, hint: /did you mean 2001:db8:1::\/48\?/ }],
  ['default', { message: /no gateway, so its family is unknown/, hint: /0\.0\.0\.0\/0/ }],
  ['default@', { message: /empty gateway/ }],
  ['198.19.0.0/33', { message: /\/33 out of range/ }],
  ['198.19.0.0/16@2001:db8::1', { message: /gateway 2001:db8::1 is IPv6/ }],
  ['default@300.1.1.1', { message: /invalid IPv4 gateway "300\.1\.1\.1"/ }],
  ['default@224.0.0.1', { message: /multicast/ }],
  ['nowhere/8', { message: /invalid IPv4 route destination "nowhere"/ }],
  ['fe80::%eth0/64', { message: /zone id/ }],
]

for (const [input, want] of badRoutes) {
  test(`parseRouteSpec refuses ${JSON.stringify(input)}`, (t) => usage(t, () => parseRouteSpec(input), want))
}

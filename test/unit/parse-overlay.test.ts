// Table tests for the VXLAN overlay's input: VNI, UDP port, remotes and --local.

import test from 'ava'
import { usage } from '../helpers/assert.js'
import { parseRemotes, parseUdpPort, parseVni } from '../../lib/parse/index.js'
import { validateVxlan } from '../../lib/ops/vxlan.js'

for (const [input, want] of [
  ['1', 1],
  ['42', 42],
  [' 42 ', 42],
  ['16777215', 16777215],
  [4096, 4096],
] as const) {
  test(`parseVni accepts ${JSON.stringify(input)}`, (t) => t.is(parseVni(input), want))
}
for (const input of ['0', '16777216', '-1', '4.5', '0x2a', '', 'abc', '042']) {
  test(`parseVni refuses ${JSON.stringify(input)}`, (t) => usage(t, () => parseVni(input), { message: /invalid VNI/, hint: /same VNI/ }))
}

for (const [input, want] of [
  ['4789', 4789],
  ['1', 1],
  ['65535', 65535],
] as const) {
  test(`parseUdpPort accepts ${input}`, (t) => t.is(parseUdpPort(input, '--dstport'), want))
}
for (const input of ['0', '65536', 'http', '']) {
  test(`parseUdpPort refuses ${JSON.stringify(input)}`, (t) => usage(t, () => parseUdpPort(input, '--dstport'), { message: /invalid --dstport/, hint: /4789/ }))
}

test('parseRemotes splits commas, canonicalises, dedupes and keeps one family', (t) => {
  t.deepEqual(parseRemotes(['198.18.20.2,198.18.20.3', '198.18.20.2']), { remotes: ['198.18.20.2', '198.18.20.3'], family: 4 })
  t.deepEqual(parseRemotes(['2001:DB8::2', '2001:db8:0::3'], '2001:db8::1'), { remotes: ['2001:db8::2', '2001:db8::3'], family: 6, local: '2001:db8::1' })
  t.deepEqual(parseRemotes([]), { remotes: [], family: undefined })
})

for (const [values, local, message] of [
  [['198.18.20.2/24'], undefined, /takes an address, not a CIDR/],
  [['198.18.20.2,'], undefined, /empty address in --remote/],
  [['198.18.20.2,2001:db8::2'], undefined, /mix IPv4 and IPv6/],
  [['198.18.20.2'], '2001:db8::1', /mix IPv4 and IPv6/],
  [['198.18.20.2'], '198.18.20.2', /also given as a remote/],
  [['224.0.0.1'], undefined, /multicast/],
  [['0.0.0.0'], undefined, /unspecified/],
  [['198.18.20.300'], undefined, /greater than 255/],
] as const) {
  test(`parseRemotes refuses ${JSON.stringify(values)}${local ? ` with --local ${local}` : ''}`, (t) => usage(t, () => parseRemotes([...values], local), { message }))
}

test('validateVxlan: defaults, --del without remotes, and a join without one refused', (t) => {
  t.like(validateVxlan({ bridge: 'br0', vni: '42', remotes: ['198.18.20.2'] }), { bridge: 'br0', vni: 42, dstport: 4789, del: false, remotes: ['198.18.20.2'] })
  t.like(validateVxlan({ bridge: 'br0', vni: 42, del: true }), { del: true, remotes: [] })
  usage(t, () => validateVxlan({ bridge: 'br0', vni: 42 }), { message: /at least one --remote/, hint: /plumb vxlan br0 --vni 42 --remote/ })
  usage(t, () => validateVxlan({ bridge: 'this-name-is-too-long', vni: 42, remotes: ['198.18.20.2'] }), { message: /bridge name/ })
})

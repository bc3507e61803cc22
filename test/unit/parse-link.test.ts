// Table tests for MAC addresses, interface names, MTU, VLAN IDs, trunks and macvlan modes.

import { createHash } from 'node:crypto'
import test from 'ava'
import { usage } from '../helpers/assert.js'
import { checkMtuForFamilies, parseMac, parseMacvlanMode, parseMtu, parseTrunks, parseVid, seedMac, validateIfname } from '../../lib/parse/index.js'

// --- MAC ---

for (const [input, want] of [
  ['02:42:C6:12:00:0A', '02:42:c6:12:00:0a'],
  ['02-42-c6-12-00-0a', '02:42:c6:12:00:0a'],
  ['00:16:3e:00:00:01', '00:16:3e:00:00:01'],
  ['fe:ff:ff:ff:ff:ff', 'fe:ff:ff:ff:ff:ff'],
] as const) {
  test(`parseMac accepts ${input}`, (t) => t.is(parseMac(input), want))
}

for (const [input, want] of [
  ['01:00:5e:00:00:01', { message: /multicast/, hint: /00:00:5e:00:00:01/ }],
  ['03:00:00:00:00:01', { message: /"03:00:00:00:00:01": multicast/ }],
  ['ff:ff:ff:ff:ff:ff', { message: /broadcast/ }],
  ['00:00:00:00:00:00', { message: /all zeros/ }],
  ['02:42:c6:12:00', { message: /wrong length \(5 bytes, need 6\)/ }],
  ['02:42:c6:12:00:0a:01', { message: /wrong length \(7 bytes/ }],
  ['02:42:c6:12:00:0g', { message: /not hexadecimal/ }],
  ['02:42-c6:12:00:0a', { message: /badly separated/ }],
  ['0242c612000a', { message: /invalid MAC address "0242c612000a"/ }],
  ['', { message: /invalid MAC address ""/ }],
  ['seed:', { message: /empty seed/ }],
] as const) {
  test(`parseMac refuses ${JSON.stringify(input)}`, (t) => usage(t, () => parseMac(input), want))
}

test('seed MAC is deterministic, documented, locally administered unicast', (t) => {
  const a = parseMac('seed:web-eth1')
  t.is(a, parseMac('seed:web-eth1'))
  t.is(a, seedMac('web-eth1'))
  t.regex(a, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
  // the documented derivation: sha256(seed)[0..6], first octet |0x02 &~0x01
  const h = createHash('sha256').update('web-eth1').digest()
  const expected = [(h[0]! | 2) & 0xfe, ...h.subarray(1, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':')
  t.is(a, expected)
  t.not(parseMac('seed:web-eth2'), a)
  for (let i = 0; i < 300; i++) {
    const mac = seedMac(`pt-${i}`)
    const first = parseInt(mac.slice(0, 2), 16)
    t.is(first & 0x02, 0x02, `${mac} is locally administered`)
    t.is(first & 0x01, 0, `${mac} is unicast`)
    t.is(parseMac(mac), mac, 'a seed MAC is itself a valid MAC')
  }
  t.is(seedMac('ünïcode'), seedMac('ünïcode'))
})

// --- interface names ---

for (const name of ['eth1', 'a', 'pl0123456789abc', 'br-0.100', 'veth_x@', 'ünïcödé1234', 'v+1', 'a,b']) {
  test(`validateIfname accepts ${JSON.stringify(name)}`, (t) => t.is(validateIfname(name), name))
}

for (const [input, want] of [
  ['', { message: /empty interface name/ }],
  ['pl0123456789abcd', { message: /"pl0123456789abcd" is 16 bytes.*at most 15/ }],
  // 8 characters, 16 bytes: the limit counts bytes
  ['éééééééé', { message: /is 16 bytes/, hint: /bytes, not characters/ }],
  ['.', { message: /invalid interface name "\."/ }],
  ['..', { message: /invalid interface name "\.\."/ }],
  ['all', { message: /invalid interface name "all"/, hint: /reserved/ }],
  ['default', { message: /"default"/, hint: /reserved/ }],
  ['a/b', { message: /contains "\/"/ }],
  ['eth0:1', { message: /contains ":"/ }],
  ['eth 1', { message: /contains whitespace/ }],
  ['eth\t1', { message: /contains control character U\+0009/ }],
  ['eth\n', { message: /control character U\+000A/ }],
  ['eth%d', { message: /contains "%"/, hint: /template/ }],
  ['a;b', { message: /contains ";"/, hint: /metacharacters/ }],
  ['a$b', { message: /contains "\$"/ }],
  ['a(b', { message: /contains "\("/ }],
  ['a&b', { message: /contains "&"/ }],
  ['a|b', { message: /contains "\|"/ }],
  ['a>b', { message: /contains ">"/ }],
  ['a`b', { message: /contains "`"/ }],
  ["a'b", { message: /contains "'"/ }],
  ['a"b', { message: /contains """/ }],
  ['a\\b', { message: /contains "\\"/ }],
  ['a*', { message: /contains "\*"/ }],
  ['a?', { message: /contains "\?"/ }],
  ['a[1]', { message: /contains "\["/ }],
  ['a{1}', { message: /contains "\{"/ }],
  ['a!', { message: /contains "!"/ }],
  ['a#', { message: /contains "#"/ }],
  ['~a', { message: /contains "~"/ }],
] as const) {
  test(`validateIfname refuses ${JSON.stringify(input)}`, (t) => usage(t, () => validateIfname(input), want))
}

test('validateIfname names what it validates', (t) => {
  usage(t, () => validateIfname('x'.repeat(20), 'host interface name'), { message: /^host interface name "x{20}" is 20 bytes/ })
})

// --- MTU ---

for (const [input, want] of [[1500, 1500], ['1500', 1500], [68, 68], ['65535', 65535], [' 9000 ', 9000]] as const) {
  test(`parseMtu accepts ${JSON.stringify(input)}`, (t) => t.is(parseMtu(input), want))
}

for (const input of [67, 65536, 0, -1500, 1500.5, '1500.5', '15OO', '', 'abc', '0x5dc', '1e3', Number.NaN, '01500']) {
  test(`parseMtu refuses ${JSON.stringify(input)} (${typeof input})`, (t) =>
    usage(t, () => parseMtu(input), { message: /invalid MTU .*must be an integer 68\.\.65535/, hint: /IPv6 needs an MTU of at least 1280/ }),
  )
}

test('checkMtuForFamilies refuses IPv6 below 1280 only', (t) => {
  t.notThrows(() => checkMtuForFamilies(1279, [4]))
  t.notThrows(() => checkMtuForFamilies(1280, [4, 6]))
  t.notThrows(() => checkMtuForFamilies(undefined, [6]))
  t.notThrows(() => checkMtuForFamilies(576, []))
  usage(t, () => checkMtuForFamilies(1279, [4, 6]), { message: /MTU 1279 is too small for IPv6 \(minimum 1280\)/, hint: /--mtu 1280/ })
  usage(t, () => checkMtuForFamilies(68, new Set<4 | 6>([6])), { message: /too small for IPv6/ })
})

// --- VLAN ---

for (const [input, want] of [[1, 1], ['1', 1], [4094, 4094], ['100', 100], [' 42 ', 42]] as const) {
  test(`parseVid accepts ${JSON.stringify(input)}`, (t) => t.is(parseVid(input), want))
}

for (const input of [0, '0', 4095, '4095', 4096, -1, '-1', '10a', '1.5', 1.5, '', 'ten', '0x10', '010']) {
  test(`parseVid refuses ${JSON.stringify(input)} (${typeof input})`, (t) =>
    usage(t, () => parseVid(input), { message: /invalid VLAN ID .*must be an integer 1\.\.4094/, hint: /0 and 4095 are reserved/ }),
  )
}

for (const [input, want] of [
  ['10', [10]],
  ['10,20,30-32', [10, 20, 30, 31, 32]],
  ['30-32,10,20,31,10', [10, 20, 30, 31, 32]],
  ['5-5', [5]],
  [' 1 , 4094 ', [1, 4094]],
] as const) {
  test(`parseTrunks accepts ${JSON.stringify(input)}`, (t) => t.deepEqual(parseTrunks(input), [...want]))
}

test('parseTrunks accepts the whole range', (t) => {
  const all = parseTrunks('1-4094')
  t.is(all.length, 4094)
  t.is(all[0], 1)
  t.is(all[4093], 4094)
})

for (const [input, want] of [
  ['', { message: /empty trunk list/ }],
  ['10,,20', { message: /empty item in trunk list "10,,20"/ }],
  ['10,', { message: /empty item/ }],
  ['32-30', { message: /reversed range "32-30"/, hint: /did you mean 30-32\?/ }],
  ['10,4095', { message: /invalid VLAN ID "4095"/, hint: /reserved/ }],
  ['0-5', { message: /invalid VLAN ID "0"/ }],
  ['10-', { message: /invalid VLAN ID "10-"/ }],
  ['a,b', { message: /invalid VLAN ID "a"/ }],
  ['1-2-3', { message: /invalid VLAN ID "1-2-3"/ }],
] as const) {
  test(`parseTrunks refuses ${JSON.stringify(input)}`, (t) => usage(t, () => parseTrunks(input), want))
}

// --- macvlan ---

for (const mode of ['bridge', 'private', 'vepa', 'passthru', 'source'] as const) {
  test(`parseMacvlanMode accepts ${mode}`, (t) => t.is(parseMacvlanMode(mode), mode))
}
test('parseMacvlanMode is case-insensitive', (t) => t.is(parseMacvlanMode('Bridge'), 'bridge'))
for (const input of ['', 'passthrough', 'bridged', 'l2']) {
  test(`parseMacvlanMode refuses ${JSON.stringify(input)}`, (t) =>
    usage(t, () => parseMacvlanMode(input), { message: new RegExp(`invalid macvlan mode "${input}"`), hint: /bridge, private, vepa, passthru, source/ }),
  )
}

// Table tests for guest references, owner marks and derived host interface names.

import test from 'ava'
import { usage } from '../helpers/assert.js'
import type { Want } from '../helpers/assert.js'
import { PlumbError } from '../../lib/errors.js'
import { deriveHostIfname, formatGuestRef, formatMark, isPlumbMark, parseGuestRef, parseMark } from '../../lib/parse/index.js'
import type { GuestRef, OwnerMark } from '../../lib/parse/index.js'

// --- guest refs ---

const all = { allowHostWord: true, allowSelf: true }

const guests: Array<[string, GuestRef, string]> = [
  ['web', { kind: 'container', engine: 'auto', name: 'web' }, 'web'],
  ['my_app.1-x', { kind: 'container', engine: 'auto', name: 'my_app.1-x' }, 'my_app.1-x'],
  ['3f4e2a1b9c8d', { kind: 'container', engine: 'auto', name: '3f4e2a1b9c8d' }, '3f4e2a1b9c8d'],
  ['a'.repeat(64), { kind: 'container', engine: 'auto', name: 'a'.repeat(64) }, 'a'.repeat(64)],
  // all-digit but 12+ long: a container ID (no pid is that large)
  ['123456789012', { kind: 'container', engine: 'auto', name: '123456789012' }, '123456789012'],
  ['docker:web', { kind: 'container', engine: 'docker', name: 'web' }, 'docker:web'],
  ['podman:db', { kind: 'container', engine: 'podman', name: 'db' }, 'podman:db'],
  ['docker:host', { kind: 'container', engine: 'docker', name: 'host' }, 'docker:host'],
  ['docker:1234', { kind: 'container', engine: 'docker', name: '1234' }, 'docker:1234'],
  ['pid:1234', { kind: 'pid', pid: 1234 }, 'pid:1234'],
  ['1234', { kind: 'pid', pid: 1234 }, 'pid:1234'],
  ['1', { kind: 'pid', pid: 1 }, 'pid:1'],
  ['4194304', { kind: 'pid', pid: 4194304 }, 'pid:4194304'],
  ['netns:pt-a1', { kind: 'netns', name: 'pt-a1' }, 'netns:pt-a1'],
  ['netns:x:y', { kind: 'netns', name: 'x:y' }, 'netns:x:y'],
  ['/proc/1234/ns/net', { kind: 'path', path: '/proc/1234/ns/net' }, '/proc/1234/ns/net'],
  ['/run/netns/./x/', { kind: 'path', path: '/run/netns/x' }, '/run/netns/x'],
  ['/var/run/docker/netns/../netns/abc', { kind: 'path', path: '/var/run/docker/netns/abc' }, '/var/run/docker/netns/abc'],
  [' web ', { kind: 'container', engine: 'auto', name: 'web' }, 'web'],
]

for (const [input, want, text] of guests) {
  test(`parseGuestRef accepts ${JSON.stringify(input)}`, (t) => {
    t.deepEqual(parseGuestRef(input), want)
    t.is(formatGuestRef(want), text)
    t.deepEqual(parseGuestRef(formatGuestRef(want), all), want, 'formatGuestRef round-trips')
  })
}

test('host and self only where allowed', (t) => {
  t.deepEqual(parseGuestRef('host', { allowHostWord: true }), { kind: 'host' })
  t.deepEqual(parseGuestRef('self', { allowSelf: true }), { kind: 'self' })
  t.is(formatGuestRef({ kind: 'host' }), 'host')
  t.is(formatGuestRef({ kind: 'self' }), 'self')
  usage(t, () => parseGuestRef('host'), { message: /"host" is not accepted as a guest here/, hint: /docker:host/ })
  usage(t, () => parseGuestRef('self', { allowHostWord: true }), { message: /"self" is not accepted/, hint: /docker:self/ })
  usage(t, () => parseGuestRef('host', { allowSelf: true }), { message: /"host" is not accepted/ })
})

test('auto containers whose bare name means something else format as docker:NAME', (t) => {
  for (const name of ['host', 'self', '1234']) {
    const ref: GuestRef = { kind: 'container', engine: 'auto', name }
    t.is(formatGuestRef(ref), `docker:${name}`)
    t.deepEqual(parseGuestRef(formatGuestRef(ref), all), { kind: 'container', engine: 'docker', name })
  }
})

const badGuests: Array<[string, Want]> = [
  ['', { message: /empty guest/, hint: /docker:NAME.*pid:1234.*netns:NAME.*absolute path/ }],
  ['   ', { message: /empty guest/ }],
  ['pid:0', { message: /invalid pid "0"/, hint: /positive/ }],
  ['pid:-5', { message: /invalid pid "-5"/ }],
  ['pid:12a', { message: /invalid pid "12a"/ }],
  ['pid:', { message: /invalid pid ""/ }],
  ['pid:0123', { message: /invalid pid "0123"/ }],
  ['0', { message: /invalid pid "0"/ }],
  ['99999999', { message: /larger than the kernel's limit/ }],
  ['netns:', { message: /invalid netns name ""/ }],
  ['netns:a/b', { message: /invalid netns name "a\/b"/, hint: /no "\/"/ }],
  ['netns:.', { message: /invalid netns name "\."/ }],
  ['netns:..', { message: /invalid netns name "\.\."/ }],
  [`netns:${'n'.repeat(256)}`, { message: /longer than 255 bytes/ }],
  ['docker:', { message: /empty container name/ }],
  ['docker:-web', { message: /invalid container name "-web"/, hint: /\[a-zA-Z0-9\]/ }],
  ['podman:we b', { message: /invalid container name "we b"/ }],
  ['docker:a/b', { message: /invalid container name "a\/b"/ }],
  ['lxc:web', { message: /unknown guest kind "lxc:"/, hint: /docker:NAME, podman:NAME/ }],
  ['run/netns/x', { message: /not absolute/, hint: /\/run\/netns\/x/ }],
  ['./ns', { message: /not absolute/ }],
  ['/', { message: /root directory/ }],
  ['-web', { message: /invalid guest "-web"/, hint: /name a guest as/ }],
  ['we b', { message: /invalid guest "we b"/ }],
  ['web;rm', { message: /invalid guest "web;rm"/ }],
  ['we\nb', { message: /control character/ }],
  ['/run/netns/x\u0000', { message: /control character/ }],
]

for (const [input, want] of badGuests) {
  test(`parseGuestRef refuses ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}...` : input)}`, (t) => usage(t, () => parseGuestRef(input), want))
}

test('the forms hint mentions host/self only where they are allowed', (t) => {
  const e1 = t.throws(() => parseGuestRef('?'), { instanceOf: PlumbError })
  t.notRegex(e1.hint ?? '', /\bhost\b|\bself\b/)
  const e2 = t.throws(() => parseGuestRef('?', all), { instanceOf: PlumbError })
  t.regex(e2.hint ?? '', /or host.*or self/)
})

// --- owner marks ---

const marks: Array<[OwnerMark, string]> = [
  [
    { v: 1, role: 'guest', op: 'attach-veth', guest: 'docker:web', ifname: 'eth1', peer: 'plab12cd34', bridge: 'br0' },
    'plumb:1 role=guest op=attach-veth guest=docker:web if=eth1 peer=plab12cd34 br=br0',
  ],
  [{ v: 1, role: 'host', op: 'p2p-link' }, 'plumb:1 role=host op=p2p-link'],
  [{ v: 1, role: 'bridge', op: 'attach-veth', bridge: 'pt-br0' }, 'plumb:1 role=bridge op=attach-veth br=pt-br0'],
  [
    { v: 1, role: 'guest', op: 'attach-veth', guest: 'netns:a b', gw: 'via=198.18.0.1,dev=eth0' },
    'plumb:1 role=guest op=attach-veth guest=netns:a%20b gw=via%3D198.18.0.1,dev%3Deth0',
  ],
  [
    { v: 1, role: 'moved', op: 'move-dev', guest: 'pid:42', ifname: 'eth1', extra: { orig: 'enp3s0', alias: 'uplink 100% = fast', up: '1' } },
    'plumb:1 role=moved op=move-dev guest=pid:42 if=eth1 orig=enp3s0 alias=uplink%20100%25%20%3D%20fast up=1',
  ],
  [{ v: 1, role: 'guest', op: 'macvlan', gw: '', extra: { parent: 'pt-ab12', mode: 'bridge' } }, 'plumb:1 role=guest op=macvlan gw= parent=pt-ab12 mode=bridge'],
  [{ v: 1, role: 'guest', op: 'vlan', guest: '/run/netns/x', extra: { 'nl\n': 'a\tb\u0000c' } }, ''],
]

for (const [mark, text] of marks) {
  test(`mark round-trips: ${JSON.stringify(mark).slice(0, 70)}`, (t) => {
    if (Object.keys(mark.extra ?? {}).some((k) => !/^[A-Za-z0-9_.-]+$/.test(k))) {
      // an extra key that would break the framing is a bug in the caller
      const err = t.throws(() => formatMark(mark), { instanceOf: PlumbError })
      t.is(err.code, 'FAILED')
      return
    }
    const s = formatMark(mark)
    t.is(s, text)
    t.true(isPlumbMark(s))
    t.deepEqual(parseMark(s), mark)
  })
}

test('mark values with control characters and unicode round-trip', (t) => {
  const mark: OwnerMark = { v: 1, role: 'guest', op: 'ovs-port', guest: 'docker:wéb', extra: { alias: 'line1\nline2\t%%==  ', note: 'ünï' } }
  const s = formatMark(mark)
  t.false(/[\n\t]/.test(s))
  t.deepEqual(parseMark(s), mark)
})

test('mark round-trip holds for generated values', (t) => {
  const alphabet = ['a', 'Z', '0', ' ', '=', '%', '%2', '%41', ':', ',', '/', '\n', '\u007f', 'é', '@', '-']
  let seed = 7
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  const str = () => Array.from({ length: rnd(8) }, () => alphabet[rnd(alphabet.length)]).join('')
  for (let i = 0; i < 300; i++) {
    const roles = ['guest', 'host', 'bridge', 'moved'] as const
    const m: OwnerMark = { v: 1, role: roles[rnd(4)]!, op: str() }
    if (rnd(2)) m.guest = str()
    if (rnd(2)) m.ifname = str()
    if (rnd(2)) m.peer = str()
    if (rnd(2)) m.bridge = str()
    if (rnd(2)) m.gw = str()
    if (rnd(2)) m.extra = { [`k${rnd(5)}`]: str(), x: str() }
    t.deepEqual(parseMark(formatMark(m)), m)
  }
})

test('extra keys may not shadow fields', (t) => {
  for (const k of ['peer', 'if', 'br', 'role', 'op', 'guest', 'gw', 'v', 'a=b', 'a b', '']) {
    const err = t.throws(() => formatMark({ v: 1, role: 'guest', op: 'x', extra: { [k]: 'y' } }), { instanceOf: PlumbError })
    t.regex(err.message, /invalid extra key/)
  }
})

test('formatMark refuses more than 255 bytes', (t) => {
  const ok = formatMark({ v: 1, role: 'guest', op: 'attach-veth', guest: '/'.padEnd(255 - 'plumb:1 role=guest op=attach-veth guest='.length, 'x') })
  t.is(Buffer.byteLength(ok), 255)
  usage(t, () => formatMark({ v: 1, role: 'guest', op: 'attach-veth', guest: '/'.padEnd(256 - 'plumb:1 role=guest op=attach-veth guest='.length, 'x') }), {
    message: /owner mark is 256 bytes.*at most 255/,
    hint: /shorter/,
  })
  // bytes, not characters; and escapes count at their encoded size
  usage(t, () => formatMark({ v: 1, role: 'guest', op: 'x', guest: 'é'.repeat(120) }), { message: /owner mark is \d+ bytes/ })
  usage(t, () => formatMark({ v: 1, role: 'guest', op: 'x', guest: ' '.repeat(80) }), { message: /owner mark is \d+ bytes/ })
})

for (const alias of [
  undefined,
  '',
  'uplink to the core',
  'Plumb:1 role=guest op=x',
  'plumb:2 role=guest op=attach-veth',
  'plumb:1',
  'plumb:1 role=guest',
  'plumb:1 op=attach-veth',
  'plumb:1 role=owner op=attach-veth',
  'plumb:1 role=guest op=x bad',
  'plumb:1 role=guest op=x =v',
  'plumb:1 role=guest op=x guest=%zz',
  'plumb:1 role=guest op=x guest=50%',
]) {
  test(`parseMark gives undefined for ${JSON.stringify(alias)}`, (t) => {
    t.is(parseMark(alias), undefined)
  })
}

test('parseMark tolerates repeated spaces and keeps unknown keys in extra', (t) => {
  t.deepEqual(parseMark('plumb:1  role=host op=attach-veth  future=1 if=eth1'), { v: 1, role: 'host', op: 'attach-veth', ifname: 'eth1', extra: { future: '1' } })
})

test('isPlumbMark', (t) => {
  t.true(isPlumbMark('plumb:1 role=guest op=x'))
  t.true(isPlumbMark('plumb:2 anything'), 'a newer version is still plumb\'s')
  t.false(isPlumbMark(undefined))
  t.false(isPlumbMark(''))
  t.false(isPlumbMark('my uplink'))
  t.false(isPlumbMark(' plumb:1 role=guest op=x'))
})

// --- derived host interface names ---

test('deriveHostIfname is deterministic, short and distinct per (guest, ifname)', (t) => {
  const a = deriveHostIfname('docker:web', 'eth1')
  t.is(a, deriveHostIfname('docker:web', 'eth1'))
  t.regex(a, /^pl[0-9a-f]{8}$/)
  t.not(deriveHostIfname('docker:web', 'eth2'), a)
  t.not(deriveHostIfname('docker:db', 'eth1'), a)
  // the separator keeps ("ab","c") and ("a","bc") apart
  t.not(deriveHostIfname('ab', 'c'), deriveHostIfname('a', 'bc'))
  const seen = new Set<string>()
  for (let i = 0; i < 2000; i++) {
    const n = deriveHostIfname(`/proc/${i}/ns/net/${'x'.repeat(i % 300)}`, `eth${i % 7}-ünï`)
    t.true(Buffer.byteLength(n) <= 15)
    seen.add(n)
  }
  t.is(seen.size, 2000, 'no collisions in 2000 names')
})

test('deriveHostIfname steps deterministically past taken names', (t) => {
  const first = deriveHostIfname('netns:pt-1', 'eth1')
  const taken = new Set([first])
  const second = deriveHostIfname('netns:pt-1', 'eth1', (n) => taken.has(n))
  t.not(second, first)
  t.regex(second, /^pl[0-9a-f]{8}$/)
  t.is(deriveHostIfname('netns:pt-1', 'eth1', (n) => taken.has(n)), second, 'same variant again')
  taken.add(second)
  const third = deriveHostIfname('netns:pt-1', 'eth1', (n) => taken.has(n))
  t.false(taken.has(third))
  t.true(Buffer.byteLength(third) <= 15)
  // the taken predicate is consulted in order: first the base name
  const asked: string[] = []
  deriveHostIfname('netns:pt-1', 'eth1', (n) => (asked.push(n), asked.length < 3))
  t.deepEqual(asked, [first, second, third])
})

test('deriveHostIfname gives up with a conflict when everything is taken', (t) => {
  const err = t.throws(() => deriveHostIfname('docker:web', 'eth1', () => true), { instanceOf: PlumbError })
  t.is(err.exitCode, 4)
  t.regex(err.message, /failed to derive a host interface name for "eth1" in docker:web/)
  t.regex(err.hint ?? '', /-l HOSTIF/)
})

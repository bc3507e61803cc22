// The replay record, pure (lib/watch/record.ts): parsing and validation by table (versions, a
// newer plumb's file, bad fields), and each edit the ops make (a link's slot, set-ip's union and
// --del, dhcp --release, sysctl and names keys, detach of an interface and of a p2p link).

import test from 'ava'
import {
  RECORD_VERSION,
  RecordError,
  addSetIp,
  containerRef,
  entryIfname,
  newContainerRecord,
  parseContainerRef,
  parseRecord,
  parseRecordFileName,
  putDhcp,
  putExpose,
  putLink,
  putNames,
  putSysctl,
  recordedBridges,
  recordedInterfaces,
  removeAddresses,
  removeDhcp,
  removeExposed,
  removeInterface,
  removeNames,
  removeP2p,
  removeP2pTo,
  removeSysctl,
} from '../../lib/watch/record.js'
import type { ContainerRecord, RecordEntry } from '../../lib/watch/record.js'

const ID = 'c8a580527be8a808b09334fa4122f6486042860b170c92c607753a9f36547075'
const PEER = 'ab'.repeat(32)
const SELF = containerRef('docker', ID)

const rec = (...entries: RecordEntry[]): ContainerRecord => ({ ...newContainerRecord('docker', ID, 'web'), entries })
const e = (op: RecordEntry['op'], args: Record<string, unknown>): RecordEntry => ({ op, args })
const ops = (r: ContainerRecord): string[] => r.entries.map((x) => `${x.op}${entryIfname(x, SELF) !== undefined ? `:${entryIfname(x, SELF)}` : ''}`)

const GOOD = { v: 1, engine: 'docker', id: ID, name: 'web', entries: [{ op: 'attach-veth', args: { bridge: 'br0', ifname: 'eth1', ips: ['198.18.0.10/24'] }, at: '2025-01-01T00:00:00.000Z' }] }

test('parseRecord reads a version-1 record as written, and one an older plumb wrote with fewer fields (no name, no at, args without the resolved MAC)', (t) => {
  t.deepEqual(parseRecord(JSON.stringify(GOOD), 'f'), GOOD)
  const older = { v: 1, engine: 'docker', id: ID, entries: [{ op: 'macvlan', args: { parent: 'enp3s0', ifname: 'eth2' } }] }
  t.deepEqual(parseRecord(JSON.stringify(older), 'f'), older)
})

const BAD: Array<[string, unknown, RegExp]> = [
  ['not JSON', '{', /not JSON/],
  ['not an object', [1], /not a JSON object/],
  ['no version', { ...GOOD, v: undefined }, /no version field "v"/],
  ['version 0', { ...GOOD, v: 0 }, /no version field "v"/],
  ['a newer plumb', { ...GOOD, v: RECORD_VERSION + 1 }, new RegExp(`version ${RECORD_VERSION + 1} was written by a newer plumb \\(this one reads up to ${RECORD_VERSION}\\); it is left as it is`)],
  ['unknown engine', { ...GOOD, engine: 'lxc' }, /"engine" is "lxc"/],
  ['bad id', { ...GOOD, id: 'web' }, /"id" is "web", not a container id/],
  ['name not a string', { ...GOOD, name: 3 }, /"name" is not a string/],
  ['no entries', { ...GOOD, entries: {} }, /"entries" is not a list/],
  ['an op plumb does not record', { ...GOOD, entries: [{ op: 'vxlan', args: {} }] }, /entries\[0\]\.op "vxlan" is not an op plumb records/],
  ['args not an object', { ...GOOD, entries: [{ op: 'dhcp', args: 'eth1' }] }, /entries\[0\]\.args is not an object/],
]
for (const [what, value, re] of BAD) {
  test(`parseRecord refuses ${what}, naming the file`, (t) => {
    const err = t.throws(() => parseRecord(typeof value === 'string' ? value : JSON.stringify(value), '/x/docker-1.json'), { instanceOf: RecordError })
    t.regex(err!.message, /^record \/x\/docker-1\.json is unreadable: /)
    t.regex(err!.message, re)
  })
}

test('file names and container refs: docker-<id>.json and docker:<id> only', (t) => {
  t.deepEqual(parseRecordFileName(`docker-${ID}.json`), { engine: 'docker', id: ID })
  t.deepEqual(parseRecordFileName(`podman-${PEER}.json`), { engine: 'podman', id: PEER })
  for (const n of ['.lock', `docker-${ID}.json.123.tmp`, 'docker-web.json', `lxc-${ID}.json`]) t.is(parseRecordFileName(n), undefined, n)
  t.deepEqual(parseContainerRef(SELF), { engine: 'docker', id: ID })
  for (const r of ['host', 'netns:x', 'docker:web', 'pid:12']) t.is(parseContainerRef(r), undefined, r)
})

test('putLink: a second op on the same interface takes its slot (what depends on it stays after it); a new interface joins the end', (t) => {
  const r = rec(e('attach-veth', { ifname: 'eth1', bridge: 'a' }), e('set-ip', { ifname: 'eth1', ips: ['198.18.0.2/24'] }))
  putLink(r, e('ovs-port', { ifname: 'eth1', bridge: 'o' }))
  putLink(r, e('macvlan', { ifname: 'eth2', parent: 'p' }))
  t.deepEqual(ops(r), ['ovs-port:eth1', 'set-ip:eth1', 'macvlan:eth2'])
  t.deepEqual(recordedBridges(rec(e('attach-veth', { ifname: 'eth1', bridge: 'a' }), e('ovs-port', { ifname: 'eth2', bridge: 'o' }), e('attach-veth', { ifname: 'eth3', bridge: 'a' }))), ['a', 'o'])
})

test('p2p entries: the same entry on both sides; each side finds its own interface and slot', (t) => {
  const link = e('p2p-link', { a: SELF, b: containerRef('docker', PEER), ifnameA: 'eth3', ifnameB: 'eth7' })
  const mine = rec()
  putLink(mine, link)
  const theirs: ContainerRecord = { ...newContainerRecord('docker', PEER), entries: [] }
  putLink(theirs, link)
  t.is(entryIfname(link, SELF), 'eth3')
  t.is(entryIfname(link, containerRef('docker', PEER)), 'eth7')
  t.deepEqual([...recordedInterfaces(mine)], [['eth3', 'p2p-link']])
  t.deepEqual([...recordedInterfaces(theirs)], [['eth7', 'p2p-link']])
})

test('addSetIp: one set-ip entry per interface, addresses and routes joined without repeats', (t) => {
  const r = rec(e('attach-veth', { ifname: 'eth1' }))
  addSetIp(r, e('set-ip', { ifname: 'eth1', ips: ['198.18.0.2/24'], routes: ['198.19.0.0/16@198.18.0.1'] }))
  addSetIp(r, e('set-ip', { ifname: 'eth1', ips: ['198.18.0.2/24', '2001:db8::2/64'] }))
  addSetIp(r, e('set-ip', { ifname: 'eth0', ips: ['198.18.9.2/24'] }))
  t.deepEqual(ops(r), ['attach-veth:eth1', 'set-ip:eth1', 'set-ip:eth0'])
  t.deepEqual(r.entries[1]!.args, { ifname: 'eth1', ips: ['198.18.0.2/24', '2001:db8::2/64'], routes: ['198.19.0.0/16@198.18.0.1'] })
})

test('removeAddresses (set-ip --del): gone from the set-ip entry and from the op that made the interface (a p2p end too); an emptied set-ip entry goes', (t) => {
  const r = rec(
    e('attach-veth', { ifname: 'eth1', ips: ['198.18.0.10/24@198.18.0.1', 'dhcp', '2001:db8::a/64'], routes: ['198.19.0.0/16@198.18.0.254'] }),
    e('set-ip', { ifname: 'eth1', ips: ['198.18.1.10/24'] }),
    e('p2p-link', { a: SELF, b: 'host', ifnameA: 'eth2', ifnameB: 'pt-h', ipA: '198.18.5.0/31', ipB: '198.18.5.1/31' }),
    e('attach-veth', { ifname: 'eth3', ips: ['198.18.0.10/24'] }),
  )
  removeAddresses(r, 'eth1', ['198.18.0.10/24', '198.18.1.10/24'], ['198.19.0.0/16'])
  removeAddresses(r, 'eth2', ['198.18.5.0/31'], [])
  t.deepEqual(ops(r), ['attach-veth:eth1', 'p2p-link:eth2', 'attach-veth:eth3'])
  t.deepEqual(r.entries[0]!.args, { ifname: 'eth1', ips: ['dhcp', '2001:db8::a/64'], routes: [] })
  t.deepEqual(r.entries[1]!.args, { a: SELF, b: 'host', ifnameA: 'eth2', ifnameB: 'pt-h', ipB: '198.18.5.1/31' })
  t.deepEqual(r.entries[2]!.args.ips, ['198.18.0.10/24'], 'another interface keeps the same address')
})

test('putDhcp / removeDhcp (dhcp --release): its own entry goes, and so does the dhcp spec (with its options) of the op that made the interface', (t) => {
  const r = rec(e('macvlan', { ifname: 'eth1', ips: ['dhcp', '2001:db8::a/64'], dhcp: { resolv: true } }), e('attach-veth', { ifname: 'eth2' }))
  putDhcp(r, e('dhcp', { ifname: 'eth2', client: 'udhcpc' }))
  putDhcp(r, e('dhcp', { ifname: 'eth2', client: 'dhclient' }))
  t.deepEqual(ops(r), ['macvlan:eth1', 'attach-veth:eth2', 'dhcp:eth2'])
  t.is(r.entries[2]!.args.client, 'dhclient', 'the last options win')
  removeDhcp(r, 'eth1')
  removeDhcp(r, 'eth2')
  t.deepEqual(ops(r), ['macvlan:eth1', 'attach-veth:eth2'])
  t.deepEqual(r.entries[0]!.args, { ifname: 'eth1', ips: ['2001:db8::a/64'] })
})

test('putSysctl: each run at the end (after the interface its keys name), a key set again leaves its earlier entry; removeSysctl by key or all', (t) => {
  const r = rec()
  putSysctl(r, ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=2'])
  putLink(r, e('attach-veth', { ifname: 'eth1' }))
  putSysctl(r, ['net.ipv4.conf.eth1.rp_filter=0', 'net.ipv4.ip_forward=0'])
  t.deepEqual(ops(r), ['sysctl', 'attach-veth:eth1', 'sysctl'])
  t.deepEqual(r.entries[0]!.args.settings, ['net.ipv4.conf.all.rp_filter=2'])
  t.deepEqual(r.entries[2]!.args.settings, ['net.ipv4.conf.eth1.rp_filter=0', 'net.ipv4.ip_forward=0'])
  removeSysctl(r, ['net.ipv4.conf.all.rp_filter'])
  t.deepEqual(ops(r), ['attach-veth:eth1', 'sysctl'], 'an emptied entry goes')
  removeSysctl(r)
  t.deepEqual(ops(r), ['attach-veth:eth1'])
})

test('putNames / removeNames: the same hostname, /etc/hosts name or resolv kind given again leaves the earlier entry; --del by value or all', (t) => {
  const r = rec()
  putNames(r, { hostname: 'web', addHosts: ['db:198.18.0.5', 'cache:198.18.0.6'], dns: ['198.18.0.53'] })
  putNames(r, { addHosts: ['db:198.18.0.7'], dnsSearch: ['lab.example'] })
  t.deepEqual(
    r.entries.map((x) => x.args),
    [
      { hostname: 'web', addHosts: ['cache:198.18.0.6'], dns: ['198.18.0.53'] },
      { addHosts: ['db:198.18.0.7'], dnsSearch: ['lab.example'] },
    ],
  )
  removeNames(r, { hostname: 'web', addHosts: ['cache:198.18.0.6'], dns: ['198.18.0.53'] })
  t.deepEqual(r.entries.map((x) => x.args), [{ addHosts: ['db:198.18.0.7'], dnsSearch: ['lab.example'] }], 'the emptied entry goes')
  removeNames(r)
  t.deepEqual(r.entries, [])
})

test('removeInterface (detach IFNAME): the op that made it, its set-ip and dhcp entries and its sysctl keys go; the p2p entries are handed back for the peer; the rest stays', (t) => {
  const link = e('p2p-link', { a: containerRef('docker', PEER), b: SELF, ifnameA: 'eth1', ifnameB: 'eth2' })
  const r = rec(
    e('attach-veth', { ifname: 'eth1' }),
    e('set-ip', { ifname: 'eth1', ips: ['198.18.0.2/24'] }),
    e('dhcp', { ifname: 'eth1' }),
    link,
    e('sysctl', { settings: ['net.ipv4.conf.eth1.rp_filter=2', 'net.ipv4.ip_forward=1'] }),
    e('names', { hostname: 'web' }),
  )
  t.deepEqual(removeInterface(r, 'eth1'), [])
  t.deepEqual(ops(r), ['p2p-link:eth2', 'sysctl', 'names'])
  t.deepEqual(r.entries[1]!.args.settings, ['net.ipv4.ip_forward=1'])
  t.deepEqual(removeInterface(r, 'eth2'), [link])
  t.deepEqual(ops(r), ['sysctl', 'names'])

  const peer: ContainerRecord = { ...newContainerRecord('docker', PEER), entries: [link, e('attach-veth', { ifname: 'eth3' })] }
  removeP2p(peer, link)
  t.deepEqual(peer.entries.map((x) => x.op), ['attach-veth'])
})

test('removeP2pTo: links to a removed container leave the record; others stay', (t) => {
  const gone = containerRef('docker', PEER)
  const r = rec(e('p2p-link', { a: SELF, b: gone, ifnameA: 'eth1', ifnameB: 'eth1' }), e('p2p-link', { a: SELF, b: 'host', ifnameA: 'eth2', ifnameB: 'pt-x' }))
  t.true(removeP2pTo(r, gone))
  t.false(removeP2pTo(r, gone))
  t.deepEqual(ops(r), ['p2p-link:eth2'])
})

test('putExpose / removeExposed: one entry per run, host ports as published; the same host port leaves an earlier entry; --del by guest port (a chosen host port) or exactly; detach of the interface takes the ports DNATed to its addresses', (t) => {
  const r = rec(e('attach-veth', { ifname: 'eth1', ips: ['198.18.0.10/24@198.18.0.1'] }), e('set-ip', { ifname: 'eth2', ips: ['198.18.1.10/24'] }))
  putExpose(r, { ports: ['8080:80/tcp', '127.0.0.1:40001:80/tcp', '5353:53/udp'], to: '198.18.0.10' })
  putExpose(r, { ports: ['8080:8000/tcp'], to: '198.18.0.10' })
  putExpose(r, { ports: ['9090:90/tcp'], to: '198.18.1.10' })
  t.deepEqual(r.entries.filter((x) => x.op === 'expose').map((x) => x.args.ports), [['127.0.0.1:40001:80/tcp', '5353:53/udp'], ['8080:8000/tcp'], ['9090:90/tcp']])
  removeExposed(r, [{ proto: 'tcp', port: 80 }]) // `expose web 80 --del`: whatever host port was chosen
  removeExposed(r, [{ proto: 'udp', port: 53, hostPort: 5354 }]) // another host port: not this one
  t.deepEqual(r.entries.filter((x) => x.op === 'expose').map((x) => x.args.ports), [['5353:53/udp'], ['8080:8000/tcp'], ['9090:90/tcp']])
  removeInterface(r, 'eth1')
  t.deepEqual(ops(r), ['set-ip:eth2', 'expose'], "eth1's published ports went with it")
  removeExposed(r)
  t.deepEqual(ops(r), ['set-ip:eth2'])
})

// The bridge-port cache's bookkeeping, with a scripted watch standing in for the kernel's link
// notifications: a port joining, leaving, moving to another bridge or deleted, a bridge deleted,
// a change landing while the first read is in flight, lost notifications. What the real link
// watch hears is tested against the kernel in test/integration/segment.test.ts.

import test from 'ava'
import { PortCache } from '../../lib/kernel/port-cache.js'
import { scriptedWatch as scripted } from '../helpers/scripted-watch.js'
import type { Heard } from '../helpers/scripted-watch.js'
import type { LinkInfo } from '../../lib/kernel/types.js'

const NEWLINK = 16
const DELLINK = 17
const NEWADDR = 20
const BR = 5
const OTHER = 6

const link = (index: number, master?: number): LinkInfo => ({ index, name: `p${index}`, mtu: 1500, up: true, operState: 'UP', linkType: 'ether', ...(master ? { master } : {}) })
/** a link message's payload as the test's parse reads it back */
const payload = (l: LinkInfo): Buffer => Buffer.from(JSON.stringify(l))
const parse = (b: Buffer): LinkInfo => JSON.parse(b.toString()) as LinkInfo
const joined = (index: number, master: number): Heard['events'][number] => [NEWLINK, -1, master, index, payload(link(index, master))]
const left = (index: number): Heard['events'][number] => [NEWLINK, -1, 0, index, payload(link(index))]
const deleted = (index: number): Heard['events'][number] => [DELLINK, -1, 0, index, Buffer.alloc(0)]

const indexes = async (ports: LinkInfo[] | Promise<LinkInfo[]>): Promise<number[]> => (await ports).map((p) => p.index).sort((a, b) => a - b)

test("a bridge's ports are read once; links joining, leaving, moving to another bridge or deleted keep them current", async (t) => {
  const { watch, hear } = scripted()
  const cache = new PortCache(watch, parse)
  let reads = 0
  const read = async (): Promise<LinkInfo[]> => (reads++, [link(10, BR), link(11, BR), link(12, BR)])
  t.deepEqual(await indexes(cache.ports(BR, read)), [10, 11, 12])
  // 13 joins; 10 leaves (nomaster); 11 moves to another bridge; 12 is deleted; 20 joins the other bridge; an address event is not a link's
  hear({ events: [joined(13, BR), left(10), joined(11, OTHER), deleted(12), joined(20, OTHER), [NEWADDR, -1, 4, 13, Buffer.from([198, 18, 0, 1])]] })
  t.deepEqual(await indexes(cache.ports(BR, read)), [13])
  t.is(reads, 1, 'without reading again')
  // a port's other changes (up, alias) keep it, with its new state
  hear({ events: [[NEWLINK, -1, BR, 13, payload({ ...link(13, BR), alias: 'plumb:1 role=host' })]] })
  const [p13] = await cache.ports(BR, read)
  t.is(p13?.alias, 'plumb:1 role=host')
  t.is(reads, 1)
})

test("a port heard of several times between two asks is parsed once, from its last message; a link that is no port is not parsed", async (t) => {
  const { watch, hear } = scripted()
  let parses = 0
  const cache = new PortCache(watch, (b) => (parses++, parse(b)))
  t.deepEqual(await indexes(cache.ports(BR, async () => [link(10, BR)])), [10])
  // an attach's port: made on the bridge, then up, then its alias (each a whole link message); another bridge's port
  hear({ events: [joined(13, BR), [NEWLINK, -1, BR, 13, payload({ ...link(13, BR), up: false })], [NEWLINK, -1, BR, 13, payload({ ...link(13, BR), alias: 'last' })], joined(20, OTHER)] })
  const ports = await cache.ports(BR, async () => [])
  t.is(ports.find((p) => p.index === 13)?.alias, 'last')
  t.is(parses, 1)
  await cache.ports(BR, async () => [])
  t.is(parses, 1, 'a parsed port is kept parsed')
})

test('a bridge deleted is forgotten (its ifindex may name another link one day): the next lookup reads', async (t) => {
  const { watch, hear } = scripted()
  const cache = new PortCache(watch, parse)
  let reads = 0
  const read = async (): Promise<LinkInfo[]> => (reads++, reads === 1 ? [link(10, BR)] : [])
  t.deepEqual(await indexes(cache.ports(BR, read)), [10])
  hear({ events: [deleted(10), deleted(BR)] })
  t.deepEqual(await indexes(cache.ports(BR, read)), [])
  t.is(reads, 2)
})

test('a change heard while the first read is in flight is replayed on top of what the read saw, in order', async (t) => {
  const { watch, hear } = scripted()
  const cache = new PortCache(watch, parse)
  let answer: (l: LinkInfo[]) => void = () => undefined
  const first = cache.ports(BR, () => new Promise((resolve) => (answer = resolve)))
  // heard before the read answers: 11 joined then left again, 12 joined, 10 deleted (the read still shows it)
  hear({ events: [joined(11, BR), left(11), joined(12, BR), deleted(10)] })
  // a second lookup meanwhile shares the read in flight
  const second = cache.ports(BR, async () => t.fail('read twice') as never)
  answer([link(10, BR), link(11, BR)])
  t.deepEqual(await indexes(first), [12])
  t.deepEqual(await indexes(second), [12])
  t.deepEqual(await indexes(cache.ports(BR, async () => t.fail('read again') as never)), [12])
})

test('lost notifications forget every bridge; a read that fails is not kept; close closes the watch', async (t) => {
  const { watch, hear, closed } = scripted()
  const cache = new PortCache(watch, parse)
  let reads = 0
  const read = async (): Promise<LinkInfo[]> => (reads++, [link(10, BR)])
  await cache.ports(BR, read)
  await cache.ports(OTHER, read)
  hear({ reset: true })
  await cache.ports(BR, read)
  await cache.ports(OTHER, read)
  t.is(reads, 4)
  // a reset heard while a read is in flight: that read's answer is not kept
  let answer: (l: LinkInfo[]) => void = () => undefined
  const cache2 = new PortCache(scripted().watch, parse)
  const failed = cache2.ports(BR, async () => {
    throw new Error('ENOBUFS')
  })
  await t.throwsAsync(Promise.resolve(failed), { message: 'ENOBUFS' })
  t.deepEqual(await indexes(cache2.ports(BR, async () => [link(30, BR)])), [30], 'read again after a failed read')
  const s = scripted()
  const cache3 = new PortCache(s.watch, parse)
  const inFlight = cache3.ports(BR, () => new Promise((resolve) => (answer = resolve)))
  s.hear({ reset: true })
  answer([link(10, BR)])
  t.deepEqual(await indexes(inFlight), [10])
  let again = 0
  await cache3.ports(BR, async () => (again++, []))
  t.is(again, 1, 'the answer of a read begun before the reset was not kept')
  cache.close()
  t.true(closed())
})

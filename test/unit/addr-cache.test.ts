// The address cache's bookkeeping, with a scripted watch standing in for the kernel's
// notifications: the orderings that a real host produces only by chance (a change landing while
// a link's first read is in flight, a lost notification) are set up here on purpose. What the
// real watch hears is tested against the kernel in test/integration/segment.test.ts.

import test from 'ava'
import { AddrCache } from '../../lib/kernel/addr-cache.js'
import { scriptedWatch as scripted } from '../helpers/scripted-watch.js'

const NEW = 20
const DEL = 21
const DELNSID = 89
const ip = (last: number): Buffer => Buffer.from([198, 18, 0, last])
const text = (b: Buffer): string => [...b].join('.')

test('a link is read once; what is heard after keeps it current, for that netns id, ifindex and family only', async (t) => {
  const { watch, hear } = scripted()
  const cache = new AddrCache(watch, text)
  let reads = 0
  const read = async (): Promise<string[]> => (reads++, ['198.18.0.10'])
  t.deepEqual([...(await cache.lookup([[7, 2, 4]], read)[0]!)], ['198.18.0.10'])
  hear({ events: [[NEW, 7, 4, 2, ip(11)], [DEL, 7, 4, 2, ip(10)], [NEW, 8, 4, 2, ip(12)], [NEW, 7, 6, 2, Buffer.alloc(16)], [NEW, 7, 4, 3, ip(13)]] })
  t.deepEqual([...(await cache.lookup([[7, 2, 4]], read)[0]!)], ['198.18.0.11'])
  t.is(reads, 1)
})

test('a change heard while the first read is in flight is replayed on top of what the read saw', async (t) => {
  const { watch, hear } = scripted()
  const cache = new AddrCache(watch, text)
  let answer!: (list: string[]) => void
  const first = cache.lookup([[7, 2, 4]], () => new Promise((resolve) => (answer = resolve)))[0]!
  // another lookup drains while the read is out: the change must not be lost
  hear({ events: [[NEW, 7, 4, 2, ip(11)]] })
  const second = cache.lookup([[7, 2, 4]], async () => t.fail('read twice') as never)[0]!
  hear({ events: [[DEL, 7, 4, 2, ip(10)]] })
  answer(['198.18.0.10']) // the read saw the state before both changes
  t.deepEqual([...(await first)], ['198.18.0.11'])
  t.is(await second, await first)
  t.deepEqual([...(await cache.lookup([[7, 2, 4]], async () => t.fail('read again') as never)[0]!)], ['198.18.0.11'])
})

test('lost notifications forget everything; a netns id taken back forgets its links only; the own netns is read every time', async (t) => {
  const { watch, hear, closed } = scripted()
  const cache = new AddrCache(watch, text)
  const reads: string[] = []
  const read = async (netnsId: number, index: number): Promise<string[]> => (reads.push(`${netnsId}/${index}`), [])
  await Promise.all(cache.lookup([[7, 2, 4], [8, 2, 4], [-1, 5, 4]], read))
  t.deepEqual(reads, ['7/2', '8/2', '-1/5'])
  hear({ events: [[DELNSID, 7, 0, 0, Buffer.alloc(0)]] })
  await Promise.all(cache.lookup([[7, 2, 4], [8, 2, 4], [-1, 5, 4]], read))
  t.deepEqual(reads.slice(3), ['7/2', '-1/5'])
  hear({ reset: true })
  await Promise.all(cache.lookup([[7, 2, 4], [8, 2, 4]], read))
  t.deepEqual(reads.slice(5), ['7/2', '8/2'])
  cache.close()
  t.true(closed())
})

test('a read that fails is not kept: the next lookup reads again', async (t) => {
  const { watch } = scripted()
  const cache = new AddrCache(watch, text)
  await t.throwsAsync(Promise.resolve(cache.lookup([[7, 2, 4]], async () => Promise.reject(new Error('EINVAL')))[0]!), { message: 'EINVAL' })
  t.deepEqual([...(await cache.lookup([[7, 2, 4]], async () => ['198.18.0.1'])[0]!)], ['198.18.0.1'])
})

test("a link just made is known empty without a read: what was heard before it does not count, what is heard after does; it replaces a read in flight", async (t) => {
  const { watch, hear } = scripted()
  const cache = new AddrCache(watch, text)
  const noRead = async (): Promise<string[]> => t.fail('read') as never
  // an older link of the same netns id and ifindex, heard before the new one was made
  hear({ events: [[NEW, 7, 4, 2, ip(10)]] })
  cache.fresh(7, 2)
  hear({ events: [[NEW, 7, 4, 2, ip(11)], [NEW, 7, 6, 2, Buffer.alloc(16, 0)]] })
  const [v4, v6] = cache.lookup([[7, 2, 4], [7, 2, 6]], noRead)
  t.false(v4 instanceof Promise, 'answered at once')
  t.deepEqual([...(v4 as ReadonlySet<string>)], ['198.18.0.11'])
  t.is((v6 as ReadonlySet<string>).size, 1)
  // a lookup's read in flight for a link that is then made anew: the new link's state wins
  let answer!: (list: string[]) => void
  const inFlight = cache.lookup([[8, 3, 4]], () => new Promise((resolve) => (answer = resolve)))[0]!
  cache.fresh(8, 3)
  answer(['198.18.0.99'])
  t.deepEqual([...(await inFlight)], ['198.18.0.99'], 'the read answers its own caller')
  t.deepEqual([...(cache.lookup([[8, 3, 4]], noRead)[0] as ReadonlySet<string>)], [])
  // the watch's own netns is never taken on trust
  cache.fresh(-1, 4)
  let reads = 0
  await cache.lookup([[-1, 4, 4]], async () => (reads++, []))[0]
  t.is(reads, 1)
})

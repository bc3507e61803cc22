// The Engine API's event stream as watch reads it (lib/watch/events.ts): event lines by table, a
// stream split anywhere, and followEvents against a fake engine on a unix socket: events as they
// come (before the body ends), the subscription known at the head, a non-200 answer, the engine
// closing mid-stream (dockerd restarting), and an abort.

import test from 'ava'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HttpResponseReader } from '../../lib/guest/engine.js'
import { fakeEngine } from '../helpers/fake-engine.js'
import { LineSplitter, eventsPath, followEvents, parseEventLine } from '../../lib/watch/events.js'
import type { ContainerEvent } from '../../lib/watch/events.js'

const ID = '3f2a'.repeat(16)
const dockerEvent = (action: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ status: action, id: ID, from: 'plumb-test:busybox', Type: 'container', Action: action, Actor: { ID, Attributes: { image: 'plumb-test:busybox', name: 'web' } }, scope: 'local', time: 1700000000, timeNano: 1700000000123456789, ...extra })

const LINES: Array<[string, string, ContainerEvent | undefined]> = [
  ['a Docker start', dockerEvent('start'), { action: 'start', id: ID, name: 'web', timeNano: BigInt(Math.round(1700000000123456789)) }],
  ['a die', dockerEvent('die'), { action: 'die', id: ID, name: 'web', timeNano: BigInt(Math.round(1700000000123456789)) }],
  ['Podman\'s (no status, no id, seconds only)', JSON.stringify({ Type: 'container', Action: 'destroy', Actor: { ID, Attributes: { name: 'web' } }, time: 1700000000 }), { action: 'destroy', id: ID, name: 'web', timeNano: 1700000000n * 1_000_000_000n }],
  ['an action watch does not follow', dockerEvent('kill'), undefined],
  ['another type', dockerEvent('start', { Type: 'network' }), undefined],
  ['no container id', JSON.stringify({ Type: 'container', Action: 'start', Actor: { ID: 'web' } }), undefined],
  ['not JSON', 'start web', undefined],
  ['JSON but not an object', '3', undefined],
]
for (const [what, line, want] of LINES) {
  test(`parseEventLine: ${what}`, (t) => {
    t.deepEqual(parseEventLine(line), want)
  })
}

test('the events request filters containers\' start, die and destroy on the engine', (t) => {
  const q = new URLSearchParams(eventsPath().split('?')[1])
  t.deepEqual(JSON.parse(q.get('filters')!), { type: ['container'], event: ['start', 'die', 'destroy'] })
})

test('LineSplitter: lines split across pieces, several in one, blank lines skipped', (t) => {
  const got: string[] = []
  const s = new LineSplitter((l) => got.push(l))
  for (const piece of ['{"a":', '1}\n{"b"', ':2}\n\n{"c":3}\n{"d"']) s.push(Buffer.from(piece))
  t.deepEqual(got, ['{"a":1}', '{"b":2}', '{"c":3}'])
})

test('HttpResponseReader with onBody: a 2xx chunked body is handed on as it arrives, before it ends; another status is read whole', (t) => {
  const got: string[] = []
  const r = new HttpResponseReader({ onBody: (c) => got.push(c.toString()) })
  t.is(r.push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhel')), undefined)
  t.deepEqual(got, ['hel'])
  t.is(r.push(Buffer.from('lo\n\r\n4\r\nyou\n\r')), undefined)
  t.deepEqual(got, ['hel', 'lo\n', 'you\n'])
  t.deepEqual(r.push(Buffer.from('\n0\r\n\r\n')), { status: 200, body: '' })
  const e = new HttpResponseReader({ onBody: () => t.fail('a 404 body is not streamed') })
  t.deepEqual(e.push(Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 21\r\n\r\n{"message":"no such"}')), { status: 404, body: { message: 'no such' } })
})


const chunk = (s: string): string => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`
const STREAM_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'

test('followEvents: subscribed at the head, each event as it comes (one split over two chunks, others ignored), then the engine closes mid-stream: an error', async (t) => {
  const start = `${dockerEvent('start')}\n`
  const srv = await fakeEngine(t, [STREAM_HEAD, chunk(start.slice(0, 40)), chunk(start.slice(40)), chunk(`${dockerEvent('kill')}\n${dockerEvent('destroy')}\n`)], { intervalMs: 5, close: 'destroy' })
  const seen: string[] = []
  const err = await t.throwsAsync(
    followEvents(srv.ep, {
      subscribed: () => seen.push('subscribed'),
      event: (e) => seen.push(e.action),
    }),
  )
  t.regex(err!.message, /chunked answer ended early|closed its event stream/)
  t.deepEqual(seen, ['subscribed', 'start', 'destroy'])
  t.regex(srv.requests[0]!, /^GET \/v1\.41\/events\?filters=/)
})

test('followEvents: an engine that ends the body cleanly still ends the watch\'s stream (an error to reconnect on)', async (t) => {
  const srv = await fakeEngine(t, [STREAM_HEAD, chunk(`${dockerEvent('start')}\n`), '0\r\n\r\n'], { intervalMs: 5 })
  const seen: string[] = []
  const err = await t.throwsAsync(followEvents(srv.ep, { event: (e) => seen.push(e.action) }))
  t.regex(err!.message, /Docker closed its event stream/)
  t.deepEqual(seen, ['start'])
})

test('followEvents: a non-200 answer is an error naming the status and the engine\'s message, and no subscription', async (t) => {
  const body = '{"message":"client version 1.41 is too new"}'
  const srv = await fakeEngine(t, [`HTTP/1.1 400 Bad Request\r\nContent-Length: ${body.length}\r\n\r\n${body}`], { intervalMs: 5 })
  let subscribed = false
  const err = await t.throwsAsync(followEvents(srv.ep, { subscribed: () => (subscribed = true), event: () => t.fail('no event') }))
  t.regex(err!.message, /failed to follow the container events: Docker API answered 400: client version 1\.41 is too new/)
  t.false(subscribed)
})

test('followEvents: an abort ends a silent stream at once, without an error', async (t) => {
  const srv = await fakeEngine(t, [STREAM_HEAD], { intervalMs: 5 })
  const stop = new AbortController()
  let subscribed!: () => void
  const up = new Promise<void>((r) => (subscribed = r))
  const following = followEvents(srv.ep, { subscribed, event: () => t.fail('no event') }, stop.signal)
  await up
  stop.abort()
  await t.notThrowsAsync(following)
})

test('followEvents: no engine at the socket is an error (watch retries; never "no containers")', async (t) => {
  const err = await t.throwsAsync(followEvents({ engine: 'docker', socketPath: join(tmpdir(), 'pt-no-such-engine.sock') }, { event: () => t.fail('no event') }))
  t.regex(err!.message, /Docker API not reachable at unix:\/\/.*pt-no-such-engine\.sock: ENOENT/)
})

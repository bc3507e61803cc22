// The Engine API's HTTP/1.1 reader (lib/guest/engine.ts) against a fake server on a unix socket that
// answers in each framing: chunked, Content-Length, a short body, 100 Continue first, close-delimited,
// a keep-alive server that never closes; and the reader fed the same bytes one at a time.

import test from 'ava'
import { PlumbError } from '../../lib/errors.js'
import { HttpResponseReader, apiGet } from '../../lib/guest/engine.js'
import { fakeEngine } from '../helpers/fake-engine.js'

const JSON_BODY = JSON.stringify({ Id: 'abc', Name: '/wéb', State: { Pid: 4242, Running: true } })


const chunked = (parts: string[]): string => `${parts.map((c, i) => `${Buffer.byteLength(c).toString(16)}${i === 1 ? ';ext=1' : ''}\r\n${c}\r\n`).join('')}0\r\n\r\n`
const thirds = (s: string): string[] => [s.slice(0, 7), s.slice(7, 30), s.slice(30)]

test('a chunked answer, its chunks cut across writes, from a server that keeps the connection open', async (t) => {
  const head = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
  const whole = head + chunked(thirds(JSON_BODY))
  // cut at arbitrary places, not at chunk boundaries; no close: the framing alone ends it
  const srv = await fakeEngine(t, [whole.slice(0, 40), whole.slice(40, 95), whole.slice(95, 101), whole.slice(101)])
  const started = Date.now()
  t.deepEqual(await apiGet(srv.ep, '/v1.41/containers/web/json', 3000), { status: 200, body: JSON.parse(JSON_BODY) })
  t.true(Date.now() - started < 2000, 'not waiting for a close that never comes')
  t.regex(srv.requests[0]!, /^GET \/v1\.41\/containers\/web\/json HTTP\/1\.1\r\n/)
  t.regex(srv.requests[0]!, /\r\nConnection: close\r\n/)
})

test('a Content-Length answer from a keep-alive server: exactly that many bytes, done without a close', async (t) => {
  const body = Buffer.from(JSON_BODY)
  const srv = await fakeEngine(t, [`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n`, body.subarray(0, 10), body.subarray(10)])
  t.deepEqual(await apiGet(srv.ep, '/x', 3000), { status: 404, body: JSON.parse(JSON_BODY) })
})

test('a short body (the connection closes before Content-Length bytes) is an error, not a truncated JSON', async (t) => {
  const srv = await fakeEngine(t, [`HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n${JSON_BODY.slice(0, 20)}`], { close: 'end' })
  const e = await t.throwsAsync(apiGet(srv.ep, '/x', 3000), { instanceOf: PlumbError })
  t.is(e?.code, 'FAILED')
  t.regex(e?.message ?? '', /^failed to query the Docker API at unix:\/\/.*: the answer ended early: 20 of 500 body bytes$/)
})

test('a chunked answer cut off before its last chunk is an error', async (t) => {
  const srv = await fakeEngine(t, [`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(thirds(JSON_BODY)).slice(0, 30)}`], { close: 'end' })
  const e = await t.throwsAsync(apiGet(srv.ep, '/x', 3000), { instanceOf: PlumbError })
  t.regex(e?.message ?? '', /a chunked answer ended early/)
})

test('100 Continue (and a 103) before the answer: the interim answers are skipped, not taken as the status', async (t) => {
  const body = Buffer.from(JSON_BODY)
  const srv = await fakeEngine(t, ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\n', `Content-Length: ${body.length}\r\n\r\n`, body])
  t.deepEqual(await apiGet(srv.ep, '/x', 3000), { status: 200, body: JSON.parse(JSON_BODY) })
})

test('no length and no chunking: the body is what comes before the server closes (HTTP/1.0 style)', async (t) => {
  const srv = await fakeEngine(t, ['HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n', 'page ', 'not found'], { close: 'end' })
  t.deepEqual(await apiGet(srv.ep, '/x', 3000), { status: 500, body: 'page not found' })
})

test('what is not HTTP, and a server that closes without answering, are errors', async (t) => {
  const ssh = await fakeEngine(t, ['SSH-2.0-OpenSSH_9.2\r\n'])
  const e1 = await t.throwsAsync(apiGet(ssh.ep, '/x', 3000), { instanceOf: PlumbError })
  t.regex(e1?.message ?? '', /the answer is not HTTP: "SSH-2\.0/)
  const silent = await fakeEngine(t, [''], { close: 'end' })
  const e2 = await t.throwsAsync(apiGet(silent.ep, '/x', 3000), { instanceOf: PlumbError })
  t.regex(e2?.message ?? '', /the connection closed without an answer$/)
  const interim = await fakeEngine(t, ['HTTP/1.1 100 Continue\r\n\r\n'], { close: 'end' })
  const e3 = await t.throwsAsync(apiGet(interim.ep, '/x', 3000), { instanceOf: PlumbError })
  t.regex(e3?.message ?? '', /closed after an interim 100 answer/)
})

test('a server that never answers: FAILED after the timeout, with a hint', async (t) => {
  const srv = await fakeEngine(t, [])
  const started = Date.now()
  const e = await t.throwsAsync(apiGet(srv.ep, '/x', 300), { instanceOf: PlumbError })
  t.regex(e?.message ?? '', /did not answer within 0\.3 s/)
  t.regex(e?.hint ?? '', /try: docker info/)
  t.true(Date.now() - started >= 290)
})

// --- the reader alone ---

type Answer = Awaited<ReturnType<typeof apiGet>>

/** Bytes fed to the reader in one piece, then the connection closed. */
function whole(raw: Buffer): Answer {
  const r = new HttpResponseReader()
  return r.push(raw) ?? r.end()
}

/** The same bytes fed one at a time: the same answer (or the same error). */
function byteByByte(raw: Buffer): Answer {
  const r = new HttpResponseReader()
  for (let i = 0; i < raw.length; i++) {
    const ans = r.push(raw.subarray(i, i + 1))
    if (ans) return ans
  }
  return r.end()
}

test('reader: every framing gives the same answer whole and byte by byte; UTF-8 cut inside a character is whole', (t) => {
  const body = Buffer.from(JSON_BODY)
  const cut = body.indexOf(0xa9) // inside é
  const cases: Array<[string, Buffer]> = [
    ['chunked', Buffer.from(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${chunked(thirds(JSON_BODY))}`)],
    ['chunked, é split between chunks', Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${cut.toString(16)}\r\n`), body.subarray(0, cut), Buffer.from(`\r\n${(body.length - cut).toString(16)}\r\n`), body.subarray(cut), Buffer.from('\r\n0\r\nX-Trailer: 1\r\n\r\n')])],
    ['content-length, bytes after it ignored', Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`), body, Buffer.from('HTTP/1.1 200 OK\r\n')])],
    ['100 Continue first', Buffer.concat([Buffer.from(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body])],
    ['Transfer-Encoding wins over Content-Length', Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(thirds(JSON_BODY))}`)],
  ]
  for (const [what, raw] of cases) {
    t.deepEqual(whole(raw), { status: 200, body: JSON.parse(JSON_BODY) }, what)
    t.deepEqual(byteByByte(raw), { status: 200, body: JSON.parse(JSON_BODY) }, `${what}, byte by byte`)
  }
  t.deepEqual(whole(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')), { status: 204, body: '' })
})

test('reader: what it refuses', (t) => {
  const refused: Array<[string, RegExp]> = [
    ['SSH-2.0-OpenSSH\r\n\r\n', /not HTTP/],
    ['HTTP/1.1 200 OK\r\nContent-Type: x', /before the end of its headers/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort', /chunked answer ended early/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /bad chunk size/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n', /does not end where its size says/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', /not chunked/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', /bad Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /bad Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"a":1}', /ended early: 7 of 10 body bytes/],
    ['HTTP/1.1 101 Switching Protocols\r\n\r\n', /switched protocols/],
  ]
  for (const [raw, re] of refused) {
    t.throws(() => whole(Buffer.from(raw)), { message: re }, JSON.stringify(raw))
    t.throws(() => byteByByte(Buffer.from(raw)), { message: re }, `${JSON.stringify(raw)}, byte by byte`)
  }
})

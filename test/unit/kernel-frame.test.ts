// Unit tests (no root) for the nlmsghdr framing plumb writes and reads itself (lib/kernel/socket.ts),
// against the netlink package's own formatMessage and parseMessages as the reference.

import test from 'ava'
import { formatMessage, parseMessages } from 'netlink/dist/structs.js'
import { frame, unframe } from '../../lib/kernel/socket.js'

const payload = [Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), Buffer.from([9, 10, 11])]

test('a request is the bytes the package would send: the header, then the payload as given', (t) => {
  const ours = frame(16, 0x605, 7, 4242, payload)
  const theirs = Buffer.concat(formatMessage({ type: 16, flags: 0x605, seq: 7, port: 4242, data: payload }))
  t.deepEqual(ours, theirs)
  t.is(ours.readUInt32LE(0), 16 + 11, 'the length counts header and payload')
  t.deepEqual(frame(18, 1, 1, 0, []), Buffer.concat(formatMessage({ type: 18, flags: 1, seq: 1, port: 0, data: [] })))
})

test('a datagram of several messages, each 4-aligned, reads as the package reads it', (t) => {
  const one = frame(16, 2, 9, 1, [Buffer.from([1, 2, 3, 4, 5])]) // 21 bytes: 3 of padding follow
  const two = frame(3, 2, 9, 1, [Buffer.from([0, 0, 0, 0])])
  const dgram = Buffer.concat([one, Buffer.alloc(3), two])
  const ours = unframe(dgram)
  t.deepEqual(
    ours.map((m) => ({ ...m, data: [...m.data] })),
    (parseMessages(dgram) as typeof ours).map((m) => ({ type: m.type, flags: m.flags, seq: m.seq, port: m.port, data: [...m.data] })),
  )
  t.deepEqual(
    ours.map((m) => m.type),
    [16, 3],
  )
  t.deepEqual([...ours[0]!.data], [1, 2, 3, 4, 5])
  t.deepEqual(unframe(Buffer.alloc(0)), [])
})

test('every bit of each header field survives, both ways: high bits (a u32 past 2^31, a u16 past 2^15) stay unsigned', (t) => {
  const fields = { type: 0x8123, flags: 0xfedc, seq: 0xfffffffe, port: 0x80000001 }
  const ours = frame(fields.type, fields.flags, fields.seq, fields.port, payload)
  t.deepEqual(ours, Buffer.concat(formatMessage({ ...fields, data: payload })))
  const [back] = unframe(ours)
  t.like(back, fields)
  t.deepEqual(back!.data, Buffer.concat(payload))
})

test('a header that lies about its length, or a datagram cut inside a header, throws', (t) => {
  const m = frame(16, 0, 1, 0, [Buffer.alloc(8)])
  m.writeUInt32LE(40, 0)
  t.throws(() => unframe(m), { message: /claims 40 bytes, 24 left/ })
  m.writeUInt32LE(8, 0)
  t.throws(() => unframe(m), { message: /claims 8 bytes/ })
  t.throws(() => unframe(Buffer.concat([frame(16, 0, 1, 0, []), Buffer.alloc(8)])), { message: /ends with 8 bytes/ })
})

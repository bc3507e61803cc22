// One netlink socket (NETLINK_ROUTE unless said), made and asked through the setns addon
// (native/setns.c: netlinkOpen, netlinkRequest), with our own request/reply matching: replies are
// routed by sequence number, a request ends at its NLMSG_ERROR (ACK or errno + extack) or, for a
// dump, at NLMSG_DONE. The kernel answers a request inside the call that sends it (a dump's later
// parts inside the reads that make room for them), so a request is sent and answered in one call
// of the addon: no reader on the event loop, no send queue. The `netlink` package formats and
// parses the messages' contents; the 16-byte nlmsghdr around them is written and read here
// (frame, unframe): the package's formatMessage and parseMessages build an object, an array and
// a header Buffer for each, ~0.5 ms of a one-shot attach's ~10 requests and dumps, where plumb
// needs one Buffer out and the messages' offsets in. Its own socket layer is not used: it
// resolves on the FIRST reply (an NLM_F_ECHO copy arrives before the error that follows it), its
// multipart assembly breaks when another reply lands in the middle of a dump, it cannot answer in
// the sending call, its native layer aborted the process at ~100 completions in one poll, and
// loading it and finding its fd cost every run ~1 ms.

import { Flags, FlagsGet } from './netlink.js'
import { NetlinkError, parseNlmsgerr } from './errors.js'
import { closeSync } from 'node:fs'
import { loadAddon } from './native.js'
import type { SetnsAddon } from './native.js'

export interface RawMsg {
  type: number
  flags: number
  seq: number
  port: number
  data: Buffer
}

/** struct nlmsghdr: length u32, type u16, flags u16, seq u32, port u32, in host order
 *  (little-endian, as every reader in lib/kernel assumes) */
const NLMSG_HDRLEN = 16

// The header's fields are read and written byte by byte, as forEachAttr (parse.ts) reads an
// attribute's: Buffer's readUInt32LE and writeUInt32LE validate through three calls each, and a
// run from the start-up snapshot (--jitless) has no compiler to inline them. Five of them a message:
// a request framed and a two-message answer unframed took 12.9 us with them, 7.9 without
// (node --jitless). The bounds are the callers' to check (unframe checks each header's).
/** A little-endian u32 at `at`. */
const u32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000
/** `v` (a u32) as little-endian bytes at `at`. */
const putU32 = (b: Uint8Array, at: number, v: number): void => {
  b[at] = v & 0xff
  b[at + 1] = (v >>> 8) & 0xff
  b[at + 2] = (v >>> 16) & 0xff
  b[at + 3] = (v >>> 24) & 0xff
}

/** One request: its header, then the payload the package formatted. */
export function frame(type: number, flags: number, seq: number, port: number, payload: readonly Uint8Array[]): Buffer {
  let length = NLMSG_HDRLEN
  for (const p of payload) length += p.length
  const b = Buffer.allocUnsafe(length)
  putU32(b, 0, length)
  b[4] = type & 0xff
  b[5] = (type >>> 8) & 0xff
  b[6] = flags & 0xff
  b[7] = (flags >>> 8) & 0xff
  putU32(b, 8, seq)
  putU32(b, 12, port)
  let off = NLMSG_HDRLEN
  for (const p of payload) {
    b.set(p, off)
    off += p.length
  }
  return b
}

/** The messages of one datagram, each 4-aligned after the one before; a header that lies throws. */
export function unframe(buf: Buffer): RawMsg[] {
  const out: RawMsg[] = []
  for (let off = 0; off < buf.length; ) {
    if (buf.length - off < NLMSG_HDRLEN) throw new Error(`a netlink datagram ends with ${buf.length - off} bytes, not a header`)
    const length = u32(buf, off)
    if (length < NLMSG_HDRLEN || length > buf.length - off) throw new Error(`a netlink message claims ${length} bytes, ${buf.length - off} left`)
    out.push({ type: buf[off + 4]! | (buf[off + 5]! << 8), flags: buf[off + 6]! | (buf[off + 7]! << 8), seq: u32(buf, off + 8), port: u32(buf, off + 12), data: buf.subarray(off + NLMSG_HDRLEN, off + length) })
    off += (length + 3) & ~3
  }
  return out
}

const NLMSG_ERROR = 2
const NLMSG_DONE = 3
const NETLINK_ROUTE = 0
const EIO = 5

export interface RequestOptions {
  /** the request's name in errors (RTM_GETLINK) */
  op: string
  /** the link kind a NEWLINK makes, for errors */
  kind?: string
}

export class RtSocket {
  /** the socket's fd, for device ioctls in its netns; closed by close() */
  readonly fd: number
  readonly port: number
  /** whether the kernel sends extended-ack text on this socket (NETLINK_EXT_ACK) */
  readonly extAck: boolean
  private readonly addon: SetnsAddon
  private seq = 1
  private closed = false

  /**
   * A socket in the calling thread's netns: call it synchronously inside withNetns for a socket in
   * another netns. Throws UNSUPPORTED (with the fix) when the addon was never built.
   */
  constructor(protocol = NETLINK_ROUTE) {
    this.addon = loadAddon()
    const made = this.addon.netlinkOpen(protocol)
    this.fd = made.fd
    this.port = made.port
    this.extAck = made.extAck
  }

  /**
   * Send one request (REQUEST|ACK|flags) and collect its replies until it completes. With
   * `absent`, those errnos (ENODEV for a lookup) answer undefined: no Error is made for what the
   * caller expects (its stack trace is most of a failed lookup's cost).
   */
  request(type: number, payload: Uint8Array[], flags: number, opts: RequestOptions): Promise<RawMsg[]>
  request(type: number, payload: Uint8Array[], flags: number, opts: RequestOptions & { absent: readonly number[] }): Promise<RawMsg[] | undefined>
  request(type: number, payload: Uint8Array[], flags: number, opts: RequestOptions & { absent?: readonly number[] }): Promise<RawMsg[] | undefined> {
    const dump = (flags & FlagsGet.DUMP) === FlagsGet.DUMP
    try {
      // NLM_F_DUMP_INTR: the table changed while it was dumped, the result may be torn
      for (let attempt = 0; ; attempt++) {
        const msgs = this.send(type, payload, flags, dump, opts)
        if (msgs === undefined || !dump || attempt >= 4 || !msgs.some((m) => m.flags & Flags.DUMP_INTR)) return Promise.resolve(msgs)
      }
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private send(type: number, payload: Uint8Array[], flags: number, dump: boolean, opts: RequestOptions & { absent?: readonly number[] }): RawMsg[] | undefined {
    if (this.closed) throw new Error('the netlink socket is closed')
    const seq = this.seq
    this.seq = (this.seq % 0xffffffff) + 1
    let answers: Buffer[]
    try {
      answers = this.addon.netlinkRequest(this.fd, frame(type, flags | Flags.REQUEST | Flags.ACK, seq, this.port, payload))
    } catch (err) {
      throw new NetlinkError(Math.abs((err as { errno?: number }).errno ?? 0), opts.op, { cause: err })
    }
    const replies: RawMsg[] = []
    for (const buf of answers) {
      // what is not this request's (an earlier request's late reply: none is known) is skipped
      for (const m of unframe(buf)) {
        if (m.seq !== seq) continue
        if (m.type === NLMSG_ERROR) {
          const { errno, extack } = parseNlmsgerr(m.data, m.flags)
          if (errno === 0) return replies
          if (opts.absent?.includes(errno)) return undefined
          throw new NetlinkError(errno, opts.op, { extackEnabled: this.extAck, ...(extack ? { extack } : {}), ...(opts.kind ? { kind: opts.kind } : {}) })
        }
        if (m.type === NLMSG_DONE && dump) {
          // NLMSG_DONE carries an int: negative when the dump failed half-way
          const { errno, extack } = m.data.length >= 4 ? parseNlmsgerr(m.data, 0) : { errno: 0, extack: undefined }
          if (errno > 0) throw new NetlinkError(errno, opts.op, extack ? { extack } : {})
          return replies
        }
        replies.push(m)
      }
    }
    throw new NetlinkError(EIO, opts.op, { extack: `the kernel's answer ended without ${dump ? 'NLMSG_DONE' : 'an acknowledgement'}` })
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    closeSync(this.fd)
  }
}

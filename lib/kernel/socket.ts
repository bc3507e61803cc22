// One netlink socket (NETLINK_ROUTE unless said) with our own request/reply matching: replies are routed by
// sequence number, a request ends at its NLMSG_ERROR (ACK or errno + extack) or, for a dump,
// at NLMSG_DONE; every request has a timeout. The package's higher layer is bypassed because
// it resolves on the FIRST reply (an NLM_F_ECHO copy arrives before the error that follows it)
// and its multipart assembly breaks when another reply lands in the middle of a dump.

import { Flags, FlagsGet, RawNetlinkSocket, formatMessage, parseMessages } from './netlink.js'
import { NetlinkError, parseNlmsgerr } from './errors.js'
import { loadAddon } from './native.js'

export interface RawMsg {
  type: number
  flags: number
  seq: number
  port: number
  data: Buffer
}

const NLMSG_ERROR = 2
const NLMSG_DONE = 3
const NETLINK_ROUTE = 0
const ETIMEDOUT = 110
/**
 * Requests on the wire per socket at most; the rest wait their turn. The `netlink` package's
 * native layer aborts the whole process ("terminate called after throwing an instance of
 * 'Napi::Error'") when ~100 sends complete in one poll: measured, 50 in flight are fine and 100
 * abort. A library user's Promise.all over many ops on one guest must not get there.
 */
export const MAX_IN_FLIGHT = 32

interface Pending {
  replies: RawMsg[]
  dump: boolean
  op: string
  kind: string | undefined
  resolve: (msgs: RawMsg[]) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout | undefined
}

export class RtSocket {
  readonly raw: RawNetlinkSocket
  readonly port: number
  /** set once NETLINK_EXT_ACK is on (by the addon): errors then say whether extack was given */
  extAck = false
  /**
   * Sends a request and reads what the kernel then has queued on the socket (the addon's
   * netlinkRequest, once it found the socket's fd). The kernel answers a request inside the send
   * that carries it: the answer is here at once, without a turn of the event loop or the
   * package's send queue and completion timer (~13 requests an attach). Without it (no addon),
   * requests go through the package's socket and its reader.
   */
  direct: ((data: Uint8Array[]) => Buffer[]) | undefined
  private seq = 1
  private readonly pending = new Map<number, Pending>()
  /** requests held back by MAX_IN_FLIGHT, in order */
  private readonly queued: Array<{ go: () => void; reject: (err: Error) => void }> = []
  /** the kernel runs one dump per socket at a time (EBUSY otherwise): dumps queue here */
  private dumpChain: Promise<unknown> = Promise.resolve()
  private closed = false

  /** Must be called synchronously inside withNetns for a socket in another netns. */
  constructor(protocol = NETLINK_ROUTE) {
    this.raw = new RawNetlinkSocket(protocol)
    this.port = this.raw.address().port
    // an idle handle must not keep the process alive; a pending request's timer does
    this.raw.unref()
    this.raw.on('message', (buf: Buffer) => this.receive(buf))
    this.raw.on('error', (err: Error) => this.failAll(err))
  }

  /** Send one request (REQUEST|ACK|flags) and collect its replies until it completes. */
  request(type: number, payload: Uint8Array[], flags: number, opts: { op: string; kind?: string; timeoutMs: number }): Promise<RawMsg[]> {
    if ((flags & FlagsGet.DUMP) === FlagsGet.DUMP) {
      const dump = async (): Promise<RawMsg[]> => {
        // NLM_F_DUMP_INTR: the table changed while it was dumped, the result may be torn
        for (let attempt = 0; ; attempt++) {
          const msgs = await this.send(type, payload, flags, opts, true)
          if (attempt >= 4 || !msgs.some((m) => m.flags & Flags.DUMP_INTR)) return msgs
        }
      }
      const run = this.dumpChain.then(dump, dump)
      this.dumpChain = run.catch(() => {})
      return run
    }
    return this.send(type, payload, flags, opts, false)
  }

  private send(type: number, payload: Uint8Array[], flags: number, opts: { op: string; kind?: string; timeoutMs: number }, dump: boolean): Promise<RawMsg[]> {
    if (this.closed) return Promise.reject(new Error('the netlink socket is closed'))
    return new Promise<RawMsg[]>((resolve, reject) => {
      const go = (): void => {
        const seq = this.seq
        this.seq = (this.seq % 0xffffffff) + 1
        const entry: Pending = { replies: [], dump, op: opts.op, kind: opts.kind, resolve, reject, timer: undefined }
        this.pending.set(seq, entry)
        const bufs = formatMessage({ type, flags: flags | Flags.REQUEST | Flags.ACK, seq, port: this.port, data: payload })
        if (this.direct) {
          let answers: Buffer[]
          try {
            answers = this.direct(bufs)
          } catch (err) {
            this.take(seq)?.reject(new NetlinkError(Math.abs((err as { errno?: number }).errno ?? 0), opts.op, { cause: err }))
            return
          }
          for (const buf of answers) this.receive(buf)
        } else {
          this.raw.send(bufs, {}, (err) => {
            if (!err) return
            const p = this.take(seq)
            p?.reject(new NetlinkError(err.errno ?? 0, opts.op, { cause: err }))
          })
        }
        // still unanswered (a reply the direct read did not find, or the package's path): timed
        if (this.pending.get(seq) === entry) {
          entry.timer = setTimeout(() => {
            this.take(seq)?.reject(new NetlinkError(ETIMEDOUT, opts.op, { extack: `no answer from the kernel within ${opts.timeoutMs} ms` }))
          }, opts.timeoutMs)
        }
      }
      if (this.pending.size < MAX_IN_FLIGHT) go()
      else this.queued.push({ go, reject })
    })
  }

  /** The pending request `seq`, done (answered, failed or timed out); the next queued one goes out. */
  private take(seq: number): Pending | undefined {
    const p = this.pending.get(seq)
    if (!p) return undefined
    this.pending.delete(seq)
    clearTimeout(p.timer)
    if (!this.closed) this.queued.shift()?.go()
    return p
  }

  private receive(buf: Buffer): void {
    let msgs: RawMsg[]
    try {
      msgs = parseMessages(buf) as RawMsg[]
    } catch {
      return // a malformed datagram: the request it belonged to fails by its timeout
    }
    for (const m of msgs) {
      const p = this.pending.get(m.seq)
      if (!p) continue // e.g. the ACK that follows a dump, or a reply to a timed-out request
      if (m.type === NLMSG_ERROR) {
        const { errno, extack } = parseNlmsgerr(m.data, m.flags)
        this.take(m.seq)
        if (errno === 0) p.resolve(p.replies)
        else p.reject(new NetlinkError(errno, p.op, { extackEnabled: this.extAck, ...(extack ? { extack } : {}), ...(p.kind ? { kind: p.kind } : {}) }))
      } else if (m.type === NLMSG_DONE && p.dump) {
        // NLMSG_DONE carries an int: negative when the dump failed half-way
        const { errno, extack } = m.data.length >= 4 ? parseNlmsgerr(m.data, 0) : { errno: 0, extack: undefined }
        this.take(m.seq)
        if (errno > 0) p.reject(new NetlinkError(errno, p.op, extack ? { extack } : {}))
        else p.resolve(p.replies)
      } else {
        p.replies.push(m)
      }
    }
  }

  private failAll(err: Error): void {
    for (const q of this.queued.splice(0)) q.reject(err)
    for (const seq of [...this.pending.keys()]) this.take(seq)?.reject(err)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.failAll(new Error('the netlink socket was closed'))
    this.raw.close()
  }
}

/**
 * A socket of `protocol` with the setns addon's help where it loads: the kernel's error text and
 * strictly filtered dumps on (tuneNetlinkSocket, which also finds the socket's fd), and requests
 * answered in one call (netlinkRequest, `direct`). Without the addon, errors still carry errno,
 * just no extack text, and requests go through the package's socket. Call it synchronously inside
 * withNetns for a socket in another netns.
 */
export function openRtSocket(protocol = NETLINK_ROUTE): { sock: RtSocket; fd: number | undefined } {
  const sock = new RtSocket(protocol)
  let fd: number | undefined
  try {
    const addon = loadAddon()
    const found = addon.tuneNetlinkSocket(sock.port, protocol)
    sock.extAck = !!found?.extAck
    fd = found?.fd
    if (fd !== undefined) {
      const at = fd
      sock.direct = (data) => addon.netlinkRequest(at, data)
    }
  } catch {
    // no addon: as said above
  }
  return { sock, fd }
}

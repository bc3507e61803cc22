// A minimal OVSDB (RFC 7047 JSON-RPC) client on ovsdb-server's unix socket: the few calls the ovs-port hot path needs.
//
// Why our own: every ovs-vsctl spawn costs ~6-10 ms, and an ovs-port made four of them; ovs-vsctl
// is itself only an OVSDB client, so one kept-open socket does the same work in a few round
// trips. No usable npm client exists (ovsdb-client and ovsdb-js are 9+ years unmaintained,
// @sourceregistry/node-ovsdb is not on the registry), so this is the small subset plumb needs:
// framing, `transact`, `echo`, and a `monitor` of Open_vSwitch.cur_cfg to wait for ovs-vswitchd
// the way ovs-vsctl does without --no-wait.

import type { Socket } from 'node:net'
import { StringDecoder } from 'node:string_decoder'
import { ovsdbSocket } from '../config.js'
import { PlumbError } from '../errors.js'
import { describeErrno, errorCodeOf, isNoServer } from '../kernel/errors.js'
import { VSCTL_TIMEOUT_S } from './argv.js'
import { START_HINT, describeCall } from './run.js'
import type { CallContext } from './run.js'

/** The same bound as every ovs-vsctl call (--timeout=5): a request, and the wait for ovs-vswitchd. */
export const OVSDB_TIMEOUT_MS = VSCTL_TIMEOUT_S * 1000
/**
 * How long ovs-vswitchd may take to apply a change: more than an ovsdb-server answer, since with
 * the userspace (netdev) datapath on a busy host a reconfiguration can take seconds; ovs-vsctl
 * itself waits without a limit unless given --timeout.
 */
export const APPLY_TIMEOUT_S = 10

const DB = 'Open_vSwitch'

/**
 * Splits a byte stream into JSON texts. ovsdb-server writes messages back to back with no
 * delimiter, and a message may be cut anywhere across chunks (inside a string, inside a UTF-8
 * sequence: the StringDecoder holds partial characters back). Braces and brackets are counted
 * outside strings only, and a backslash escapes the next character inside one.
 */
export class JsonSplitter {
  private readonly decoder = new StringDecoder('utf8')
  private buf = ''
  /** where scanning resumes in buf */
  private pos = 0
  /** where the message being scanned starts in buf, -1 between messages */
  private start = -1
  private depth = 0
  private inString = false
  private escaped = false

  /** Feed a chunk; returns the complete JSON texts it finished, in order. */
  push(chunk: Buffer | string): string[] {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.write(chunk)
    const out: string[] = []
    const b = this.buf
    for (let i = this.pos; i < b.length; i++) {
      const c = b.charCodeAt(i)
      if (this.start < 0) {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue
        if (c !== 0x7b && c !== 0x5b) throw new Error(`not a JSON object at byte ${i}: ${JSON.stringify(b.slice(i, i + 40))}`)
        this.start = i
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (c === 0x5c) this.escaped = true // backslash
        else if (c === 0x22) this.inString = false // "
        continue
      }
      if (c === 0x22) this.inString = true
      else if (c === 0x7b || c === 0x5b) this.depth++ // { [
      else if (c === 0x7d || c === 0x5d) {
        // } ]
        if (--this.depth === 0) {
          out.push(b.slice(this.start, i + 1))
          this.start = -1
        }
      }
    }
    // Keep only the unfinished message (or nothing) for the next chunk.
    if (this.start < 0) {
      this.buf = ''
      this.pos = 0
    } else {
      this.buf = b.slice(this.start)
      this.pos = this.buf.length
      this.start = 0
    }
    return out
  }

  /** Bytes held back: an unfinished message (for tests and for a clean close). */
  get pending(): number {
    return this.buf.length
  }
}

interface Pending {
  resolve: (v: unknown) => void
  reject: (e: Error) => void
}

/** A JSON-RPC error from the server (or a dropped connection): the text goes into a PlumbError by the caller. */
export class OvsdbError extends Error {
  constructor(
    message: string,
    /** the RFC 7047 error string, e.g. "constraint violation", "timed out" */
    readonly error: string,
    /** index of the failing operation in a transact, when it was one */
    readonly opIndex?: number,
  ) {
    super(message)
    this.name = 'OvsdbError'
  }
}

/** A transport failure: the socket could not be opened, or it closed under a request. */
class TransportError extends Error {
  constructor(
    message: string,
    readonly errno?: string,
  ) {
    super(message)
    this.name = 'TransportError'
  }
}

class Connection {
  private readonly splitter = new JsonSplitter()
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  closed = false
  /** Open_vSwitch.cur_cfg as last reported by the monitor (undefined until it is set up) */
  curCfg: number | undefined
  private monitorP: Promise<void> | undefined
  private readonly cfgWaiters = new Set<() => void>()

  constructor(
    readonly socket: Socket,
    /** the socket path it was opened on (configure() may change it between calls) */
    readonly path: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('close', () => this.fail(new TransportError('ovsdb-server closed the connection')))
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(new TransportError(err.message, err.code)))
  }

  private onData(chunk: Buffer): void {
    let texts: string[]
    try {
      texts = this.splitter.push(chunk)
    } catch (err) {
      this.socket.destroy()
      this.fail(new TransportError(`ovsdb-server sent something that is not JSON-RPC: ${(err as Error).message}`))
      return
    }
    for (const text of texts) {
      let msg: { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown }
      try {
        msg = JSON.parse(text) as typeof msg
      } catch {
        continue // a framing slip cannot happen with the splitter; a bad message is skipped, its request times out
      }
      if (typeof msg.method === 'string') this.onRequest(msg.method, msg.params, msg.id)
      else if (typeof msg.id === 'number') this.onReply(msg.id, msg.result, msg.error)
    }
  }

  private onRequest(method: string, params: unknown, id: unknown): void {
    // The server probes idle clients with echo and drops those that do not answer.
    if (method === 'echo') this.write({ result: params, error: null, id })
    else if (method === 'update' && Array.isArray(params) && params[0] === 'plumb-cfg') this.onCfgUpdate(params[1])
  }

  private onReply(id: number, result: unknown, error: unknown): void {
    const p = this.pending.get(id)
    if (!p) return
    this.pending.delete(id)
    this.refIfBusy()
    if (error !== null && error !== undefined) {
      const e = error as { error?: unknown; details?: unknown }
      const kind = typeof e === 'object' && typeof e.error === 'string' ? e.error : JSON.stringify(error)
      const details = typeof e === 'object' && typeof e.details === 'string' ? `: ${e.details}` : ''
      p.reject(new OvsdbError(`${kind}${details}`, kind))
    } else p.resolve(result)
  }

  private onCfgUpdate(tableUpdates: unknown): void {
    const rows = (tableUpdates as Record<string, Record<string, { new?: { cur_cfg?: unknown } }>> | undefined)?.[DB]
    for (const row of Object.values(rows ?? {})) {
      const cfg = row.new?.cur_cfg
      // cur_cfg only grows. Never step it back: the monitor's initial value is applied in a promise
      // callback, after an update that arrived in the same chunk was applied synchronously
      // (seen: initial 4314 overwrote the update to 4315, and the wait for 4315 never ended).
      if (typeof cfg === 'number' && (this.curCfg === undefined || cfg > this.curCfg)) this.curCfg = cfg
    }
    for (const wake of [...this.cfgWaiters]) wake()
  }

  private write(msg: unknown): void {
    this.socket.write(JSON.stringify(msg))
  }

  /** While a request is out the socket keeps the process alive; idle, it never does. */
  private refIfBusy(): void {
    if (this.pending.size > 0 || this.cfgWaiters.size > 0) this.socket.ref()
    else this.socket.unref()
  }

  private fail(err: TransportError): void {
    if (this.closed) return
    this.closed = true
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    for (const wake of [...this.cfgWaiters]) wake()
    this.socket.unref()
  }

  request(method: string, params: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new TransportError('ovsdb-server closed the connection'))
    const id = this.nextId++
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        this.refIfBusy()
        reject(new TransportError(`ovsdb-server did not answer within ${VSCTL_TIMEOUT_S} s`, 'ETIMEDOUT'))
      }, OVSDB_TIMEOUT_MS)
      timer.unref()
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      })
      this.refIfBusy()
      this.write({ method, params, id })
    })
  }

  /** Monitor Open_vSwitch.cur_cfg once per connection; resolves when the initial value is in. */
  monitorCfg(): Promise<void> {
    this.monitorP ??= this.request('monitor', [DB, 'plumb-cfg', { [DB]: { columns: ['cur_cfg'] } }]).then((initial) => this.onCfgUpdate(initial))
    return this.monitorP
  }

  /** Resolves once ovs-vswitchd reports cur_cfg >= cfg (it has applied that configuration). */
  waitCfg(cfg: number): Promise<void> {
    if (this.curCfg !== undefined && this.curCfg >= cfg) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        if (this.closed) {
          done()
          reject(new TransportError('ovsdb-server closed the connection'))
        } else if (this.curCfg !== undefined && this.curCfg >= cfg) {
          done()
          resolve()
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new TransportError(`ovs-vswitchd did not apply the change within ${APPLY_TIMEOUT_S} s (is ovs-vswitchd running?)`, 'ETIMEDOUT'))
      }, APPLY_TIMEOUT_S * 1000)
      timer.unref()
      const done = (): void => {
        clearTimeout(timer)
        this.cfgWaiters.delete(wake)
        this.refIfBusy()
      }
      this.cfgWaiters.add(wake)
      this.refIfBusy()
    })
  }

  close(): void {
    this.socket.destroy()
    this.fail(new TransportError('connection closed by plumb'))
  }
}

let shared: Promise<Connection> | undefined
let opened = 0

/** How many sockets this process has opened to ovsdb-server (tests check the connection is reused). */
export const ovsdbConnectionsOpened = (): number => opened

async function open(path: string): Promise<Connection> {
  // node:net only on this path: a command that never talks to OVS never loads it.
  const net = await import('node:net')
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = net.createConnection({ path })
    const onError = (err: NodeJS.ErrnoException): void => reject(new TransportError(err.message, err.code))
    s.once('error', onError)
    s.once('connect', () => {
      s.off('error', onError)
      resolve(s)
    })
    // Connecting to a unix socket is immediate or fails at once; the timer is a backstop.
    const timer = setTimeout(() => {
      s.destroy()
      reject(new TransportError(`connecting to ${path} took over ${VSCTL_TIMEOUT_S} s`, 'ETIMEDOUT'))
    }, OVSDB_TIMEOUT_MS)
    timer.unref()
    s.once('connect', () => clearTimeout(timer))
    s.once('error', () => clearTimeout(timer))
  })
  opened++
  socket.setNoDelay?.(true)
  const conn = new Connection(socket, path)
  socket.unref()
  return conn
}

/** The process's one connection, opened on first use and again if it was closed since. */
async function connection(): Promise<Connection> {
  const path = ovsdbSocket()
  if (shared) {
    const c = await shared.catch(() => undefined)
    if (c && !c.closed && c.path === path) return c
    if (c && !c.closed) c.close() // configured to another server since
  }
  const p = open(path)
  shared = p
  // A failed open is not kept: the next call tries again (ovsdb-server may have started since).
  p.catch(() => {
    if (shared === p) shared = undefined
  })
  return p
}

/** Close the shared connection (tests; a library user never needs to: the socket is unref()'d). */
export function closeOvsdb(): void {
  const c = shared
  shared = undefined
  void c?.then((conn) => conn.close(), () => undefined)
}

/** A transport or protocol failure as a PlumbError, in the words ovs-vsctl has for the same cause. */
export function ovsdbPlumbError(c: CallContext, err: unknown): PlumbError {
  if (err instanceof PlumbError) return err
  const what = describeCall(c)
  const path = ovsdbSocket()
  if (err instanceof TransportError) {
    // ovs-vsctl's own words for the same causes
    if (isNoServer(err.errno)) {
      return new PlumbError('UNSUPPORTED', `${what}: Open vSwitch is not running (unix:${path}: database connection failed (${describeErrno(err.errno!)}))`, { hint: START_HINT, cause: err })
    }
    if (err.errno && errorCodeOf(err.errno) === 'PERMISSION') {
      return new PlumbError('PERMISSION', `${what}: unix:${path}: ${err.message}`, { hint: 'run as root (ovsdb and ovs-vswitchd sockets are root-only)', cause: err })
    }
    if (err.errno === 'ETIMEDOUT') return new PlumbError('UNSUPPORTED', `${what}: ${err.message}`, { hint: START_HINT, cause: err })
    return new PlumbError('FAILED', `${what}: ${err.message}`, { hint: START_HINT, cause: err })
  }
  if (err instanceof OvsdbError) return new PlumbError('FAILED', `${what}: ${err.message}`, { cause: err })
  return new PlumbError('FAILED', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}

/** The failure (a PlumbError from ovsdbPlumbError, or a transport error) was: no socket file at all (ENOENT). */
export function ovsdbSocketMissing(err: unknown): boolean {
  const t = err instanceof TransportError ? err : (err as { cause?: unknown } | undefined)?.cause
  return t instanceof TransportError && t.errno === 'ENOENT'
}

/** An OVSDB operation (RFC 7047 §5.2); loosely typed on purpose, the callers build them. */
export type Op = Record<string, unknown> & { op: string }


async function rawTransact(conn: Connection, ops: Op[]): Promise<Array<Record<string, unknown>>> {
  const res = await conn.request('transact', [DB, ...ops])
  if (!Array.isArray(res)) throw new OvsdbError(`transact answered ${JSON.stringify(res)}`, 'protocol error')
  // A failed operation has {error, details} at its index (the rest are null); a failed commit
  // (constraints, referential integrity) adds one more element after the operations.
  for (const [i, r] of res.entries()) {
    const e = r as { error?: unknown; details?: unknown } | null
    if (e && typeof e.error === 'string') {
      throw new OvsdbError(`${e.error}${typeof e.details === 'string' && e.details ? `: ${e.details}` : ''}`, e.error, i < ops.length ? i : undefined)
    }
  }
  return res as Array<Record<string, unknown>>
}

/**
 * One OVSDB transaction. Resolves to the per-operation results; a failed operation or commit
 * rejects with an OvsdbError (its `opIndex` says which operation), transport failures with a
 * PlumbError (not running, timeout, permission: see ovsdbPlumbError).
 */
export async function transact(ops: Op[], c: CallContext): Promise<Array<Record<string, unknown>>> {
  return withConnection(c, (conn) => rawTransact(conn, ops))
}

/**
 * Run `fn` on the shared connection. A kept connection can turn out dead only when used
 * (ovsdb-server restarted while we were idle): then `fn` runs once more on a fresh one. A
 * request that got no answer in time is not retried.
 */
async function withConnection<T>(c: CallContext, fn: (conn: Connection) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const before = opened
    let conn: Connection
    try {
      conn = await connection()
    } catch (err) {
      throw ovsdbPlumbError(c, err)
    }
    const reused = opened === before
    try {
      return await fn(conn)
    } catch (err) {
      if (err instanceof OvsdbError) throw err
      if (attempt === 0 && reused && err instanceof TransportError && err.errno !== 'ETIMEDOUT') continue
      throw ovsdbPlumbError(c, err)
    }
  }
}

/** ops that make a transaction ask ovs-vswitchd to reconfigure, and read the number to wait for */
const bumpCfg = (): Op[] => [
  { op: 'mutate', table: DB, where: [], mutations: [['next_cfg', '+=', 1]] },
  { op: 'select', table: DB, where: [], columns: ['next_cfg'] },
]

/**
 * A mutating transaction the way ovs-vsctl (without --no-wait) runs one: `next_cfg += 1` and a
 * read of it ride in the same transaction, then we wait until ovs-vswitchd reports cur_cfg at
 * least that high, which means it has applied the change (after that Interface.ofport and
 * error are set). Resolves to the results of `ops` (the two extra ones dropped).
 */
export async function transactAndWait(ops: Op[], c: CallContext): Promise<Array<Record<string, unknown>>> {
  return withConnection(c, async (conn) => {
    // The monitor request goes out first (once per connection); the transaction does not wait for its answer.
    const monitor = conn.monitorCfg()
    monitor.catch(() => undefined)
    const res = await rawTransact(conn, [...ops, ...bumpCfg()])
    const sel = res[ops.length + 1] as { rows?: Array<{ next_cfg?: unknown }> } | undefined
    const next = sel?.rows?.[0]?.next_cfg
    await monitor
    if (typeof next === 'number') await conn.waitCfg(next)
    return res.slice(0, ops.length)
  })
}

// Talking to Docker and Podman: the Engine API over the unix socket (~1 ms a call), `podman inspect` as a fallback.

import { PlumbError, notFound, unsupported } from '../errors.js'
import { errorCodeOf, isNoServer } from '../kernel/errors.js'
import { endpointUrl, engineEndpoint } from './endpoint.js'
import type { EngineEndpoint } from './endpoint.js'
import { apiMessage, containerFromInspect, publishedFromList, summaryFromList } from './inspect.js'
import type { ContainerInfo, ContainerSummary, EngineName, PublishedPort } from './types.js'
import { findOnPath, run } from '../proc.js'

/** Docker 20.10's API version; newer Dockers and Podman's compat API still serve it. */
export const API = '/v1.41'
const TIMEOUT_MS = 5000

export const ENGINE_TITLE: Record<EngineName, string> = { docker: 'Docker', podman: 'Podman' }

/** The socket was not there or nobody listened: the engine is not running (or not at this path). */
export class EngineUnreachable extends Error {
  constructor(
    readonly endpoint: EngineEndpoint,
    readonly errno: string,
  ) {
    super(`${ENGINE_TITLE[endpoint.engine]} API not reachable at ${endpointUrl(endpoint)}: ${errno}`)
    this.name = 'EngineUnreachable'
  }
}

export interface ApiAnswer {
  status: number
  body: unknown
}

/**
 * GET `p` on the engine's socket; EngineUnreachable when there is no engine there.
 *
 * HTTP/1.1 by hand over node:net rather than node:http: a one-shot `plumb attach-veth NAME`
 * spent ~17 ms of CPU in node:http (loading it, its agent, and the IPv6 regex its agent
 * compiles for a unix socket's "server name"), against ~1 ms here. One request with
 * `Connection: close`; the answer is read by its own framing (HttpResponseReader), so a server
 * that keeps the connection open anyway is no wait, and one that closes early is an error.
 */
export async function apiGet(ep: EngineEndpoint, p: string, timeoutMs = TIMEOUT_MS): Promise<ApiAnswer> {
  return apiRequest(ep, 'GET', p, undefined, timeoutMs)
}

/** One request with an optional JSON body (POST, DELETE: the lab's containers). */
export async function apiCall(ep: EngineEndpoint, method: 'POST' | 'DELETE', p: string, body?: unknown, timeoutMs = TIMEOUT_MS): Promise<ApiAnswer> {
  return apiRequest(ep, method, p, body, timeoutMs)
}

/** A never-ending answer (`GET /events`), read as it comes: see apiRequest's `stream`. */
export interface ApiStreaming {
  /** the answer's status, once its head is in: from then on the timeout no longer applies */
  onHead?: (status: number) => void
  /** a 2xx answer's body bytes as they arrive (de-chunked); another status's body is read whole into the answer */
  onData: (chunk: Buffer) => void
  /** close the connection: the request then resolves with the status and an empty body */
  signal?: AbortSignal
}

/**
 * One request, its answer read by its framing. With `raw`, the body is handed back as bytes
 * (a started exec's multiplexed output, which the engine writes until the command ends and
 * then closes), else as JSON when it parses. With `stream`, a 2xx body goes to `stream.onData`
 * as it arrives and the request resolves when the body ends (an engine that closes the
 * connection mid-body, as a restarting dockerd does, rejects it); the timeout bounds only the
 * wait for the head.
 */
export async function apiRequest(ep: EngineEndpoint, method: string, p: string, body?: unknown, timeoutMs = TIMEOUT_MS, opts: { raw?: boolean; stream?: ApiStreaming } = {}): Promise<ApiAnswer> {
  const net = await import('node:net')
  const what = `the ${ENGINE_TITLE[ep.engine]} API at ${endpointUrl(ep)}`
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  const stream = opts.stream
  return new Promise((resolve, reject) => {
    const reader = new HttpResponseReader({
      raw: opts.raw ?? false,
      ...(stream
        ? {
            onBody: stream.onData,
            onHead: (status: number) => {
              sock.setTimeout(0) // an event stream may be silent for hours
              stream.onHead?.(status)
            },
          }
        : {}),
    })
    let settled = false
    const settle = (f: () => ApiAnswer): void => {
      if (settled) return
      settled = true
      sock.destroy()
      try {
        resolve(f())
      } catch (err) {
        reject(err instanceof PlumbError ? err : new PlumbError('FAILED', `failed to query ${what}: ${(err as Error).message}`, { cause: err }))
      }
    }
    const sock = net.createConnection({ path: ep.socketPath })
    if (stream?.signal) {
      const abort = (): void => settle(() => ({ status: reader.status, body: '' }))
      if (stream.signal.aborted) queueMicrotask(abort)
      else stream.signal.addEventListener('abort', abort, { once: true })
    }
    sock.setTimeout(timeoutMs, () => {
      // The cause says "the engine, not this container": gc and ls then know nothing of any guest of it.
      settle(() => {
        throw new PlumbError('FAILED', `${ENGINE_TITLE[ep.engine]} API at ${endpointUrl(ep)} did not answer within ${timeoutMs / 1000} s`, {
          hint: `is ${ep.engine === 'docker' ? 'dockerd' : 'the Podman service'} hung? try: ${ep.engine} info`,
          cause: new EngineUnreachable(ep, 'ETIMEDOUT'),
        })
      })
    })
    const head = `${method} ${p} HTTP/1.1\r\nHost: ${ep.engine}\r\nAccept: application/json\r\n${payload ? `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n` : ''}Connection: close\r\n\r\n`
    // write, not end: a half-closed client can look gone to the server, which may cancel the request
    sock.on('connect', () => sock.write(payload ? Buffer.concat([Buffer.from(head), payload]) : head))
    sock.on('data', (c: Buffer) => {
      let ans: ApiAnswer | undefined
      try {
        ans = reader.push(c)
      } catch (err) {
        settle(() => {
          throw err
        })
        return
      }
      if (ans) settle(() => ans)
    })
    // The server closed its side: the end of a body without a length, else an answer cut short.
    sock.on('end', () => settle(() => reader.end()))
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return
      settled = true
      const code = err.code ?? ''
      if (isNoServer(code)) return reject(new EngineUnreachable(ep, code))
      if (errorCodeOf(code) === 'PERMISSION') {
        return reject(new PlumbError('PERMISSION', `failed to connect to ${what}: permission denied`, { hint: 'run as root', cause: err }))
      }
      reject(new PlumbError('FAILED', `failed to query ${what}: ${err.message}`, { cause: err }))
    })
  })
}

/**
 * Reads one HTTP/1.1 response off a byte stream (RFC 9112): the status line and headers, interim
 * 1xx answers (100 Continue) skipped, then the body by its framing: chunked, Content-Length, or
 * (neither) up to the close of the connection. A body shorter than its framing says is an error,
 * never a truncated JSON. Bytes after a complete response are ignored.
 */
export class HttpResponseReader {
  private buf: Buffer = Buffer.alloc(0)
  /** the last status line's code (0 before one is read) */
  status = 0
  /** what the body is delimited by, once the head is read */
  private framing: { kind: 'length'; left: number } | { kind: 'chunked'; state: 'size' | 'data' | 'crlf' | 'trailer'; left: number } | { kind: 'close' } | undefined
  private readonly body: Buffer[] = []
  private bodyBytes = 0
  /** a 2xx answer with `onBody`: its bytes go there as they come, not into `body` */
  private streaming = false

  constructor(private readonly opts: { raw?: boolean; onBody?: (chunk: Buffer) => void; onHead?: (status: number) => void } = {}) {}

  /** Feed the next bytes; the response once it is complete. Throws on what is not HTTP. */
  push(chunk: Buffer): ApiAnswer | undefined {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    while (!this.framing) {
      const head = this.buf.indexOf('\r\n\r\n')
      if (head < 0) {
        if (!/^(H(T(T(P(\/.*)?)?)?)?)?$/s.test(this.buf.subarray(0, 8).toString('latin1'))) throw new Error(`the answer is not HTTP: ${JSON.stringify(this.buf.subarray(0, 60).toString('latin1'))}`)
        return undefined
      }
      const lines = this.buf.subarray(0, head).toString('latin1').split('\r\n')
      this.buf = this.buf.subarray(head + 4)
      this.readHead(lines)
    }
    return this.readBody()
  }

  /** The connection closed: the response if it is complete by its framing (or delimited by the close), else why not. */
  end(): ApiAnswer {
    if (!this.framing) {
      if (this.buf.length) throw new Error('the answer ended before the end of its headers')
      throw new Error(this.status ? `the connection closed after an interim ${this.status} answer, before the answer itself` : 'the connection closed without an answer')
    }
    if (this.framing.kind === 'close') {
      this.take(this.buf)
      return this.answer()
    }
    if (this.framing.kind === 'length') throw new Error(`the answer ended early: ${this.bodyBytes + this.buf.length} of ${this.bodyBytes + this.framing.left} body bytes`)
    throw new Error(`a chunked answer ended early (after ${this.bodyBytes} body bytes)`)
  }

  private readHead(lines: string[]): void {
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '')
    if (!m) throw new Error(`the answer is not HTTP: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`)
    const status = Number(m[1])
    if (status === 101) throw new Error('the server switched protocols (101), which plumb never asks for')
    this.status = status
    if (status < 200) return // interim (100 Continue, 102, 103): the real answer follows
    const values = (name: string): string[] =>
      lines
        .slice(1)
        .filter((l) => l.slice(0, name.length + 1).toLowerCase() === `${name}:`)
        .map((l) => l.slice(name.length + 1).trim())
    this.streaming = this.opts.onBody !== undefined && status < 300
    this.opts.onHead?.(status)
    if (status === 204 || status === 304) {
      this.framing = { kind: 'length', left: 0 }
      return
    }
    // Transfer-Encoding wins over Content-Length (RFC 9112 6.3).
    const te = values('transfer-encoding').join(',').toLowerCase()
    if (te) {
      if (!/(^|,)\s*chunked\s*$/.test(te)) throw new Error(`the answer's transfer coding "${te}" is not chunked`)
      this.framing = { kind: 'chunked', state: 'size', left: 0 }
      return
    }
    const lengths = [...new Set(values('content-length').flatMap((v) => v.split(',').map((x) => x.trim())))]
    if (lengths.length > 1 || (lengths.length === 1 && !/^\d+$/.test(lengths[0]!))) throw new Error(`the answer has a bad Content-Length: ${JSON.stringify(values('content-length').join(', '))}`)
    this.framing = lengths.length ? { kind: 'length', left: Number(lengths[0]) } : { kind: 'close' }
  }

  /** Body bytes, as they are read: handed on (streaming) or kept for the answer. */
  private take(bytes: Buffer): void {
    if (bytes.length === 0) return
    this.bodyBytes += bytes.length
    if (this.streaming) this.opts.onBody!(bytes)
    else this.body.push(bytes)
  }

  /** Up to `left` bytes of what is buffered, taken; how many. */
  private takeUpTo(left: number): number {
    const n = Math.min(this.buf.length, left)
    this.take(this.buf.subarray(0, n))
    this.buf = this.buf.subarray(n)
    return n
  }

  private readBody(): ApiAnswer | undefined {
    const f = this.framing!
    if (f.kind === 'close') {
      if (this.streaming) this.takeUpTo(this.buf.length)
      return undefined
    }
    if (f.kind === 'length') {
      f.left -= this.takeUpTo(f.left)
      return f.left === 0 ? this.answer() : undefined
    }
    for (;;) {
      if (f.state === 'data') {
        // as much of the chunk's data as is here (a stream's consumer gets it at once)
        f.left -= this.takeUpTo(f.left)
        if (f.left > 0) return undefined
        f.state = 'crlf'
      }
      if (f.state === 'crlf') {
        if (this.buf.length < 2) return undefined
        if (this.buf[0] !== 0x0d || this.buf[1] !== 0x0a) throw new Error('a chunk of the answer does not end where its size says')
        this.buf = this.buf.subarray(2)
        f.state = 'size'
        continue
      }
      const eol = this.buf.indexOf('\r\n')
      if (eol < 0) return undefined
      const line = this.buf.subarray(0, eol).toString('latin1')
      this.buf = this.buf.subarray(eol + 2)
      if (f.state === 'trailer') {
        if (line === '') return this.answer()
        continue // a trailer field: nothing plumb needs
      }
      const size = line.split(';')[0]!.trim()
      if (!/^[0-9a-fA-F]+$/.test(size)) throw new Error(`a chunked answer has a bad chunk size ${JSON.stringify(line.slice(0, 20))}`)
      f.left = parseInt(size, 16)
      f.state = f.left === 0 ? 'trailer' : 'data'
    }
  }

  /** The body as JSON when it parses, else as text (kept for the message); the bytes with `raw`; '' when it was streamed. */
  private answer(): ApiAnswer {
    const body = Buffer.concat(this.body)
    if (this.opts.raw) return { status: this.status, body }
    const text = body.toString('utf8')
    try {
      return { status: this.status, body: JSON.parse(text) as unknown }
    } catch {
      return { status: this.status, body: text }
    }
  }
}

export function apiFailure(ep: EngineEndpoint, what: string, ans: ApiAnswer): PlumbError {
  return new PlumbError('FAILED', `failed to ${what}: ${ENGINE_TITLE[ep.engine]} API answered ${ans.status}${apiMessage(ans.body) ? `: ${apiMessage(ans.body)}` : ''}`)
}

export function noSuchContainer(name: string, tried: string): PlumbError {
  return notFound(
    `no such container "${name}"`,
    `tried ${tried}; for an ip netns write netns:NAME, for a process pid:N, or give the absolute path of a netns file`,
  )
}

/** GET /containers/NAME/json; undefined on 404. */
async function apiInspect(ep: EngineEndpoint, name: string): Promise<ContainerInfo | undefined> {
  const ans = await apiGet(ep, `${API}/containers/${encodeURIComponent(name)}/json`)
  if (ans.status === 404) return undefined
  if (ans.status !== 200) throw apiFailure(ep, `inspect container "${name}"`, ans)
  return containerFromInspect(ep.engine, ans.body)
}

async function podmanCli(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await run(bin, args, { timeout: 20_000, env: env as Record<string, string>, extendEnv: false })
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }
}

async function podmanInspectCli(bin: string, name: string, env: NodeJS.ProcessEnv): Promise<ContainerInfo | undefined> {
  const r = await podmanCli(bin, ['inspect', '--type', 'container', name], env)
  if (r.exitCode !== 0) {
    if (/no such (container|object)/i.test(r.stderr)) return undefined
    throw new PlumbError('FAILED', `failed to inspect container "${name}" with podman inspect: ${r.stderr.trim() || `exit ${r.exitCode}`}`)
  }
  let list: unknown
  try {
    list = JSON.parse(r.stdout)
  } catch (err) {
    throw new PlumbError('FAILED', `failed to read podman inspect's output for "${name}": not JSON`, { cause: err })
  }
  const first = Array.isArray(list) ? list[0] : undefined
  return first === undefined ? undefined : containerFromInspect('podman', first)
}

function podmanUnreachable(ep: EngineEndpoint): PlumbError {
  return unsupported(
    `Podman is not reachable here: no API socket at ${ep.socketPath} and no podman binary on PATH`,
    'start the Podman API (systemctl start podman.socket, or podman system service) or install podman; set CONTAINER_HOST=unix://PATH for another socket',
  )
}

/** How a lookup was done, for "what was tried" hints. */
export interface Lookup {
  info: ContainerInfo | undefined
  tried: string
  /** inspect another container the same way (a shared netns's owner) */
  again: (name: string) => Promise<ContainerInfo | undefined>
}

/** Docker not there: NOT_FOUND for the op (a name was given, nothing could find it), caused by EngineUnreachable (gc and ls: "don't know"). */
function dockerUnreachable(name: string, err: EngineUnreachable): PlumbError {
  return new PlumbError('NOT_FOUND', `no such container "${name}": the Docker API is not reachable (${err.errno})`, {
    hint: `is dockerd running? (tried ${endpointUrl(err.endpoint)}; set DOCKER_HOST=unix://PATH for another socket)`,
    cause: err,
  })
}

/**
 * Inspect one container; `info` undefined when the engine has no such container.
 * Docker unreachable: NOT_FOUND (a name was given, nothing could find it). Podman: its socket,
 * else `podman inspect`, else UNSUPPORTED naming both.
 */
export async function lookupContainer(name: string, engine: EngineName, env: NodeJS.ProcessEnv = process.env): Promise<Lookup> {
  const ep = engineEndpoint(engine, env)
  const tried = `the ${ENGINE_TITLE[engine]} API at ${ep.socketPath}`
  // A second look (the owner of a shared netns, the pid re-check) fails the way the first would.
  const again = (n: string) =>
    apiInspect(ep, n).catch((err: unknown) => {
      throw err instanceof EngineUnreachable && engine === 'docker' ? dockerUnreachable(n, err) : err
    })
  try {
    return { info: await apiInspect(ep, name), tried, again }
  } catch (err) {
    if (!(err instanceof EngineUnreachable)) throw err
    if (engine === 'docker') throw dockerUnreachable(name, err)
    const bin = findOnPath('podman', env.PATH)
    if (!bin) throw podmanUnreachable(ep)
    const again = (n: string) => podmanInspectCli(bin, n, env)
    return { info: await again(name), tried: `podman inspect (no API socket at ${ep.socketPath})`, again }
  }
}

/** Inspect a container by name or id; NOT_FOUND when there is none (running or not). */
export async function inspectContainer(name: string, engine: EngineName = 'docker', env: NodeJS.ProcessEnv = process.env): Promise<ContainerInfo> {
  const l = await lookupContainer(name, engine, env)
  if (!l.info) throw noSuchContainer(name, l.tried)
  return l.info
}

/**
 * All containers of an engine (running or not), for `ls`: one GET, no inspect each (where a
 * container's netns is, is asked only of those looked at). An engine that cannot be asked
 * throws (EngineUnreachable, or a PlumbError caused by one): "no containers" would be a guess.
 */
export async function listContainers(engine: EngineName = 'docker', env: NodeJS.ProcessEnv = process.env): Promise<ContainerSummary[]> {
  const ep = engineEndpoint(engine, env)
  const ans = await apiGet(ep, `${API}/containers/json?all=1`)
  if (ans.status !== 200) throw apiFailure(ep, 'list containers', ans)
  return (Array.isArray(ans.body) ? ans.body : []).map((j) => summaryFromList(ep.engine, j)).filter((r): r is ContainerSummary => r !== undefined)
}

/** The host ports an engine publishes (-p) for its running containers: through its API only. */
export async function publishedPorts(engine: EngineName = 'docker', env: NodeJS.ProcessEnv = process.env): Promise<PublishedPort[]> {
  const ep = engineEndpoint(engine, env)
  const ans = await apiGet(ep, `${API}/containers/json`)
  if (ans.status !== 200) throw apiFailure(ep, 'list containers', ans)
  return publishedFromList(ans.body)
}

/** For `doctor`: can we reach this engine, and how. */
export async function engineStatus(engine: EngineName, env: NodeJS.ProcessEnv = process.env): Promise<{ ok: boolean; detail: string }> {
  let ep: EngineEndpoint
  try {
    ep = engineEndpoint(engine, env)
  } catch (err) {
    return { ok: false, detail: (err as Error).message }
  }
  try {
    const ans = await apiGet(ep, `${API}/version`)
    if (ans.status !== 200) return { ok: false, detail: `${endpointUrl(ep)} answered ${ans.status}` }
    const v = ans.body as { Version?: string; ApiVersion?: string }
    return { ok: true, detail: `${ENGINE_TITLE[engine]} ${v.Version ?? '?'} (API ${v.ApiVersion ?? '?'}) at ${endpointUrl(ep)}` }
  } catch (err) {
    if (engine === 'podman' && err instanceof EngineUnreachable) {
      const bin = findOnPath('podman', env.PATH)
      if (bin) return { ok: true, detail: `${bin} (no API socket at ${ep.socketPath}: lookups use podman inspect, ~100 ms slower)` }
      return { ok: false, detail: `no API socket at ${ep.socketPath} and no podman binary on PATH` }
    }
    return { ok: false, detail: err instanceof EngineUnreachable ? `not reachable at ${endpointUrl(ep)} (${err.errno})` : (err as Error).message }
  }
}

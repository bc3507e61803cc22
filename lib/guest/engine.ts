// Talking to Docker and Podman: the Engine API over the unix socket (~1 ms a call), `podman inspect` as a fallback.

import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import { PlumbError, notFound, unsupported } from '../errors.js'
import { endpointUrl, engineEndpoint } from './endpoint.js'
import type { EngineEndpoint } from './endpoint.js'
import { apiMessage, containerFromInspect, summaryFromInfo, summaryFromList } from './inspect.js'
import type { ContainerInfo, ContainerSummary, EngineName } from './types.js'
import { run } from '../proc.js'

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
 * compiles for a unix socket's "server name"), against ~1 ms here. One GET with
 * `Connection: close`, read to the end; Docker and Podman send JSON, chunked or with a length.
 */
export async function apiGet(ep: EngineEndpoint, p: string, timeoutMs = TIMEOUT_MS): Promise<ApiAnswer> {
  return parseAnswer(ep, await apiRequest(ep, 'GET', p, undefined, timeoutMs))
}

/** One request with an optional JSON body (POST, DELETE: the lab's containers), read to the end. */
export async function apiCall(ep: EngineEndpoint, method: 'POST' | 'DELETE', p: string, body?: unknown, timeoutMs = TIMEOUT_MS): Promise<ApiAnswer> {
  return parseAnswer(ep, await apiRequest(ep, method, p, body, timeoutMs))
}

function parseAnswer(ep: EngineEndpoint, raw: Buffer): ApiAnswer {
  try {
    return parseHttpResponse(raw)
  } catch (err) {
    throw new PlumbError('FAILED', `failed to query the ${ENGINE_TITLE[ep.engine]} API at ${endpointUrl(ep)}: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * The whole raw answer to one request (`Connection: close`, read until the engine closes): a
 * JSON answer, or the stream of a started exec, which the engine writes until the command ends.
 */
export async function apiRequest(ep: EngineEndpoint, method: string, p: string, body?: unknown, timeoutMs = TIMEOUT_MS): Promise<Buffer> {
  const net = await import('node:net')
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const sock = net.createConnection({ path: ep.socketPath })
    sock.setTimeout(timeoutMs, () => {
      // The cause says "the engine, not this container": gc and ls then know nothing of any guest of it.
      sock.destroy(
        new PlumbError('FAILED', `${ENGINE_TITLE[ep.engine]} API at ${endpointUrl(ep)} did not answer within ${timeoutMs / 1000} s`, {
          hint: `is ${ep.engine === 'docker' ? 'dockerd' : 'the Podman service'} hung? try: ${ep.engine} info`,
          cause: new EngineUnreachable(ep, 'ETIMEDOUT'),
        }),
      )
    })
    const head = `${method} ${p} HTTP/1.1\r\nHost: ${ep.engine}\r\nAccept: application/json\r\n${payload ? `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n` : ''}Connection: close\r\n\r\n`
    // write, not end: a half-closed client can look gone to the server, which may cancel the request
    sock.on('connect', () => sock.write(payload ? Buffer.concat([Buffer.from(head), payload]) : head))
    sock.on('data', (c: Buffer) => chunks.push(c))
    sock.on('end', () => resolve(Buffer.concat(chunks)))
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof PlumbError) return reject(err)
      const code = err.code ?? ''
      if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTSOCK' || code === 'ENOTDIR') return reject(new EngineUnreachable(ep, code))
      if (code === 'EACCES' || code === 'EPERM') {
        return reject(new PlumbError('PERMISSION', `failed to connect to the ${ENGINE_TITLE[ep.engine]} API at ${endpointUrl(ep)}: permission denied`, { hint: 'run as root', cause: err }))
      }
      reject(new PlumbError('FAILED', `failed to query the ${ENGINE_TITLE[ep.engine]} API at ${endpointUrl(ep)}: ${err.message}`, { cause: err }))
    })
  })
}

/** An HTTP/1.1 response read to its end: status and body (JSON when it parses, else the text). */
export function parseHttpResponse(raw: Buffer): ApiAnswer {
  const { status, body } = httpBody(raw)
  const text = body.toString('utf8')
  try {
    return { status, body: JSON.parse(text) as unknown }
  } catch {
    return { status, body: text } // not JSON: kept for the message
  }
}

/** Status and raw body bytes of an HTTP/1.1 response (de-chunked; cut at Content-Length). */
export function httpBody(raw: Buffer): { status: number; body: Buffer } {
  const head = raw.indexOf('\r\n\r\n')
  if (head < 0) throw new Error('the answer is not HTTP (no end of headers)')
  const lines = raw.subarray(0, head).toString('latin1').split('\r\n')
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')
  if (!status) throw new Error(`the answer is not HTTP: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`)
  const header = (name: string): string | undefined => lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim()
  let body = raw.subarray(head + 4)
  if (/\bchunked\b/i.test(header('transfer-encoding') ?? '')) body = unchunk(body)
  else {
    const length = Number(header('content-length'))
    if (Number.isInteger(length) && length >= 0) body = body.subarray(0, length)
  }
  return { status: Number(status[1]), body }
}

/** A chunked body (RFC 9112 7.1): hex size, CRLF, data, CRLF ... up to the zero-size chunk. */
function unchunk(b: Buffer): Buffer {
  const parts: Buffer[] = []
  let at = 0
  for (;;) {
    const eol = b.indexOf('\r\n', at)
    if (eol < 0) throw new Error('a chunked answer ended early')
    const size = parseInt(b.subarray(at, eol).toString('latin1').split(';')[0]!, 16)
    if (!Number.isInteger(size) || size < 0) throw new Error('a chunked answer has a bad chunk size')
    if (size === 0) return Buffer.concat(parts)
    if (eol + 2 + size > b.length) throw new Error('a chunked answer ended early')
    parts.push(b.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
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

/** The `podman` binary on PATH, if any (no spawn: looking costs microseconds, spawning ~50 ms). */
export function findOnPath(bin: string, envPath: string = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(':')) {
    if (!dir) continue
    const p = path.join(dir, bin)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      /* next */
    }
  }
  return undefined
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

async function listViaApi(ep: EngineEndpoint): Promise<ContainerSummary[]> {
  const ans = await apiGet(ep, `${API}/containers/json?all=1`)
  if (ans.status !== 200) throw apiFailure(ep, 'list containers', ans)
  const rows = (Array.isArray(ans.body) ? ans.body : []).map((j) => summaryFromList(ep.engine, j)).filter((r): r is ContainerSummary => r !== undefined)
  // The list has no pid or SandboxKey: inspect the running ones (in parallel, ~1 ms each).
  return Promise.all(
    rows.map(async (r) => {
      if (!r.running) return r
      const info = await apiInspect(ep, r.id).catch(() => undefined)
      return info ? summaryFromInfo(info) : r
    }),
  )
}

async function listViaPodmanCli(bin: string, env: NodeJS.ProcessEnv): Promise<ContainerSummary[]> {
  const ids = await podmanCli(bin, ['ps', '-a', '-q', '--no-trunc'], env)
  const list = ids.stdout.split(/\s+/).filter(Boolean)
  if (ids.exitCode !== 0 || list.length === 0) return []
  const r = await podmanCli(bin, ['inspect', '--type', 'container', ...list], env)
  if (!r.stdout.trim()) return []
  const arr = JSON.parse(r.stdout) as unknown[]
  return arr.map((j) => summaryFromInfo(containerFromInspect('podman', j)))
}

/**
 * All containers of an engine (running or not), for `ls`. An engine that cannot be asked
 * throws (EngineUnreachable, or a PlumbError caused by one): "no containers" would be a guess.
 */
export async function listContainers(engine: EngineName = 'docker', env: NodeJS.ProcessEnv = process.env): Promise<ContainerSummary[]> {
  const ep = engineEndpoint(engine, env)
  try {
    return await listViaApi(ep)
  } catch (err) {
    const bin = engine === 'podman' ? findOnPath('podman', env.PATH) : undefined
    if (err instanceof EngineUnreachable && bin) return await listViaPodmanCli(bin, env)
    throw err
  }
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

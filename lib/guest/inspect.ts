// Mapping the engines' inspect/list JSON (Docker Engine API, Podman's compat API, `podman inspect`) to plain records (pure).

import { PlumbError } from '../errors.js'
import type { ContainerInfo, ContainerSummary, EngineName, PublishedPort } from './types.js'

type Json = Record<string, unknown>

const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {})
const str = (v: unknown): string => (typeof v === 'string' ? v : '')
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0)

/** Docker reports names as '/web'; users write 'web'. */
export function stripSlash(name: string): string {
  return name.startsWith('/') ? name.slice(1) : name
}

/** One container from GET /containers/NAME/json (or one element of `podman inspect`). */
export function containerFromInspect(engine: EngineName, json: unknown): ContainerInfo {
  const j = obj(json)
  const id = str(j.Id) || str(j.ID)
  if (!id) throw new PlumbError('FAILED', `failed to read the ${engine} inspect answer: no container Id in it`)
  const state = obj(j.State)
  const running = state.Running === true
  const exposed = Object.keys(obj(obj(j.Config).ExposedPorts))
  return {
    ...(exposed.length ? { exposedPorts: exposed } : {}),
    engine,
    id,
    name: stripSlash(str(j.Name)),
    running,
    paused: state.Paused === true,
    pid: running ? num(state.Pid) : 0,
    sandboxKey: str(obj(j.NetworkSettings).SandboxKey),
    networkMode: str(obj(j.HostConfig).NetworkMode),
  }
}

/** The container whose netns this one joined (`--net=container:<id-or-name>`), if any. */
export function sharedNetnsOf(info: Pick<ContainerInfo, 'networkMode'>): string | undefined {
  const m = /^container:(.+)$/.exec(info.networkMode)
  return m ? m[1] : undefined
}

/**
 * Where to open a running container's netns. SandboxKey (a bind mount held by the engine) first:
 * it does not depend on a pid that could be reused. Without one (--net=container:X has none),
 * the container's init process: /proc/PID/ns/net.
 */
export function netnsPathsOf(info: Pick<ContainerInfo, 'sandboxKey' | 'pid'>): string[] {
  const paths: string[] = []
  if (info.sandboxKey) paths.push(info.sandboxKey)
  if (info.pid > 0) paths.push(`/proc/${info.pid}/ns/net`)
  return paths
}

/** One row of GET /containers/json?all=1. */
export function summaryFromList(engine: EngineName, json: unknown): ContainerSummary | undefined {
  const j = obj(json)
  const id = str(j.Id)
  if (!id) return undefined
  const names = Array.isArray(j.Names) ? j.Names.filter((n): n is string => typeof n === 'string') : []
  // Legacy links add extra names like '/other/alias': the container's own name has no inner '/'.
  const name = stripSlash(names.find((n) => !stripSlash(n).includes('/')) ?? names[0] ?? id.slice(0, 12))
  return {
    engine,
    id,
    name,
    running: str(j.State) === 'running',
  }
}

/** The published ports of GET /containers/json rows (their `Ports` with a PublicPort). */
export function publishedFromList(json: unknown): PublishedPort[] {
  const out: PublishedPort[] = []
  for (const row of Array.isArray(json) ? json : []) {
    const j = obj(row)
    const names = Array.isArray(j.Names) ? j.Names.filter((n): n is string => typeof n === 'string') : []
    const container = stripSlash(names.find((n) => !stripSlash(n).includes('/')) ?? str(j.Id).slice(0, 12))
    for (const p of Array.isArray(j.Ports) ? j.Ports : []) {
      const q = obj(p)
      if (!num(q.PublicPort)) continue
      const ip = str(q.IP)
      out.push({ container, hostIp: ip === '0.0.0.0' || ip === '::' ? '' : ip, hostPort: num(q.PublicPort), proto: str(q.Type) || 'tcp', port: num(q.PrivatePort) })
    }
  }
  return out
}

/** The `message` of an Engine API error body ({"message":"No such container: x"}). */
export function apiMessage(body: unknown): string {
  return str(obj(body).message) || (typeof body === 'string' ? body.trim() : '')
}

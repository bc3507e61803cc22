// Starting, stopping and exec-ing Docker containers through the Engine API (the lab's linux
// nodes, as containerlab starts them): create + start, remove, list by label, exec with output.
// The docker CLI costs ~26 ms a call and a spawn; the API ~1-5 ms.

import { PlumbError, conflict, notFound } from '../errors.js'
import { API, ENGINE_TITLE, apiCall, apiFailure, apiGet, apiRequest } from './engine.js'
import { engineEndpoint } from './endpoint.js'
import type { EngineEndpoint } from './endpoint.js'
import { apiMessage, stripSlash } from './inspect.js'

export interface ContainerSpec {
  name: string
  image: string
  cmd?: string[]
  entrypoint?: string[]
  env?: Record<string, string>
  labels?: Record<string, string>
  binds?: string[]
  user?: string
  hostname?: string
  /** Docker's network mode: `none`, `host`, `bridge`, `container:NAME` */
  networkMode: string
  /** containerlab starts linux nodes privileged: `ip` lines under exec: need CAP_NET_ADMIN (EPERM otherwise) */
  privileged: boolean
}

// capability(7) numbers to Docker's names, for the privileged fallback below.
const CAPS = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE',
  'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN',
  'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE',
  'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
]

/**
 * The capabilities this host's bounding set lacks (read from our own /proc/self/status: plumb
 * runs as root beside dockerd). `--privileged` asks runc for every capability, and on a host
 * (or a machine that is itself a container) missing one, runc fails with "unable to apply caps:
 * operation not permitted": every privileged container fails to start. Found on this test bed.
 */
export function missingCaps(status: string, lastCap: number): string[] {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)
  if (!m) return []
  const have = BigInt(`0x${m[1]}`)
  const missing: string[] = []
  for (let i = 0; i <= Math.min(lastCap, CAPS.length - 1); i++) if (!(have & (1n << BigInt(i)))) missing.push(CAPS[i]!)
  return missing
}

async function hostMissingCaps(): Promise<string[]> {
  const { readFileSync } = await import('node:fs')
  try {
    return missingCaps(readFileSync('/proc/self/status', 'utf8'), Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim()))
  } catch {
    return []
  }
}

/**
 * The HostConfig that makes a container privileged. Where the host lacks capabilities, the
 * closest thing runc can start: every capability the host has, no seccomp or AppArmor
 * confinement, and a writable /proc/sys (so `sysctl -w` under exec: works, as privileged).
 */
function privilegedConfig(missing: string[]): Record<string, unknown> {
  if (missing.length === 0) return { Privileged: true }
  // (The API's form of the CLI's --security-opt systempaths=unconfined: no masked or read-only paths.)
  return { CapAdd: ['ALL'], CapDrop: missing, SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'], MaskedPaths: [], ReadonlyPaths: [] }
}

/** The body of POST /containers/create for a spec (pure; the dry run prints its docker run twin). */
export function createBody(spec: ContainerSpec, missing: string[] = []): Record<string, unknown> {
  return {
    Image: spec.image,
    ...(spec.cmd ? { Cmd: spec.cmd } : {}),
    ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
    ...(spec.env && Object.keys(spec.env).length ? { Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`) } : {}),
    Labels: spec.labels ?? {},
    ...(spec.user !== undefined ? { User: spec.user } : {}),
    ...(spec.hostname !== undefined && !/^(host|container:)/.test(spec.networkMode) ? { Hostname: spec.hostname } : {}),
    HostConfig: {
      NetworkMode: spec.networkMode,
      ...(spec.privileged ? privilegedConfig(missing) : {}),
      ...(spec.binds?.length ? { Binds: spec.binds } : {}),
    },
  }
}

const q = (s: string): string => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`)

/** The `docker run` line equivalent to creating and starting `spec` (for --dry-run). */
export async function dockerRunLine(spec: ContainerSpec): Promise<string> {
  const missing = spec.privileged ? await hostMissingCaps() : []
  const args = ['docker', 'run', '-d', '--name', spec.name, `--net=${spec.networkMode}`]
  if (spec.privileged && missing.length === 0) args.push('--privileged')
  if (spec.privileged && missing.length) {
    args.push('--cap-add', 'ALL', ...missing.flatMap((c) => ['--cap-drop', c]))
    for (const o of ['seccomp=unconfined', 'apparmor=unconfined', 'systempaths=unconfined']) args.push('--security-opt', o)
  }
  if (spec.hostname !== undefined && !/^(host|container:)/.test(spec.networkMode)) args.push('--hostname', spec.hostname)
  for (const [k, v] of Object.entries(spec.labels ?? {})) args.push('--label', `${k}=${v}`)
  for (const [k, v] of Object.entries(spec.env ?? {})) args.push('-e', `${k}=${v}`)
  for (const b of spec.binds ?? []) args.push('-v', b)
  if (spec.user !== undefined) args.push('--user', spec.user)
  if (spec.entrypoint) args.push('--entrypoint', spec.entrypoint.join(' '))
  args.push(spec.image, ...(spec.cmd ?? []))
  return args.map(q).join(' ')
}

function docker(ep?: EngineEndpoint): EngineEndpoint {
  return ep ?? engineEndpoint('docker')
}

/** Create and start a container; resolves to its id. The image must be there already (no pull). */
export async function runContainer(spec: ContainerSpec, ep?: EngineEndpoint): Promise<string> {
  const e = docker(ep)
  const created = await apiCall(e, 'POST', `${API}/containers/create?name=${encodeURIComponent(spec.name)}`, createBody(spec, spec.privileged ? await hostMissingCaps() : []), 30_000)
  if (created.status === 404) {
    throw notFound(`failed to create container "${spec.name}": ${apiMessage(created.body) || `no image ${spec.image}`}`, `build or load the image first (docker image ls shows what is here; plumb does not pull)`)
  }
  if (created.status === 409) throw conflict(`failed to create container "${spec.name}": ${apiMessage(created.body) || 'the name is taken'}`, `a container of that name exists and is not this lab's: docker rm -f ${spec.name}, or change the lab's prefix`)
  if (created.status !== 201) throw apiFailure(e, `create container "${spec.name}"`, created)
  const id = (created.body as { Id?: string }).Id
  if (!id) throw new PlumbError('FAILED', `failed to create container "${spec.name}": the ${ENGINE_TITLE[e.engine]} API answered no Id`)
  const started = await apiCall(e, 'POST', `${API}/containers/${id}/start`, undefined, 30_000)
  if (started.status !== 204 && started.status !== 304) {
    await removeContainer(id, e).catch(() => undefined) // a container that cannot start is not left behind
    throw apiFailure(e, `start container "${spec.name}"`, started)
  }
  return id
}

/** `docker start`: a container of the lab that stopped (its netns, and so its links, are new). */
export async function startContainer(idOrName: string, ep?: EngineEndpoint): Promise<void> {
  const e = docker(ep)
  const ans = await apiCall(e, 'POST', `${API}/containers/${encodeURIComponent(idOrName)}/start`, undefined, 30_000)
  if (ans.status !== 204 && ans.status !== 304) throw apiFailure(e, `start container "${idOrName}"`, ans)
}

/** `docker rm -f -v`; a container already gone is fine. */
export async function removeContainer(idOrName: string, ep?: EngineEndpoint): Promise<void> {
  const e = docker(ep)
  const ans = await apiCall(e, 'DELETE', `${API}/containers/${encodeURIComponent(idOrName)}?force=1&v=1`, undefined, 30_000)
  if (ans.status !== 204 && ans.status !== 404) throw apiFailure(e, `remove container "${idOrName}"`, ans)
}

export interface LabelledContainer {
  id: string
  name: string
  running: boolean
  labels: Record<string, string>
  image: string
}

/** Containers (running or not), with their labels; only those labelled `key=value` when given. */
export async function listLabelled(label?: { key: string; value: string }, ep?: EngineEndpoint): Promise<LabelledContainer[]> {
  const e = docker(ep)
  const filters = label ? `&filters=${encodeURIComponent(JSON.stringify({ label: [`${label.key}=${label.value}`] }))}` : ''
  const ans = await apiGet(e, `${API}/containers/json?all=1${filters}`)
  if (ans.status !== 200) throw apiFailure(e, label ? `list containers labelled ${label.key}=${label.value}` : 'list containers', ans)
  return (Array.isArray(ans.body) ? ans.body : []).map((row: Record<string, unknown>) => {
    const names = Array.isArray(row.Names) ? (row.Names as string[]) : []
    return {
      id: String(row.Id ?? ''),
      name: stripSlash(names.find((n) => !stripSlash(n).includes('/')) ?? names[0] ?? ''),
      running: row.State === 'running',
      labels: (row.Labels ?? {}) as Record<string, string>,
      image: String(row.Image ?? ''),
    }
  })
}

/** Whether the engine has `image` (plumb never pulls: the lab's images must be there). */
export async function imageExists(image: string, ep?: EngineEndpoint): Promise<boolean> {
  const e = docker(ep)
  const ans = await apiGet(e, `${API}/images/${encodeURIComponent(image)}/json`)
  if (ans.status === 404) return false
  if (ans.status !== 200) throw apiFailure(e, `inspect image "${image}"`, ans)
  return true
}

export interface ContainerExec {
  exitCode: number
  stdout: string
  stderr: string
}

/**
 * Run `argv` inside a running container (`docker exec`), with its own image's tools: create the
 * exec, start it attached (the engine streams its output, multiplexed, until it ends), read its
 * exit code. The command has the container's capabilities (not --privileged: on a host lacking
 * one, that exec fails as the container's start would).
 */
export async function execInContainer(idOrName: string, argv: string[], opts: { timeoutMs?: number; ep?: EngineEndpoint } = {}): Promise<ContainerExec> {
  const e = docker(opts.ep)
  const made = await apiCall(e, 'POST', `${API}/containers/${encodeURIComponent(idOrName)}/exec`, { AttachStdout: true, AttachStderr: true, Cmd: argv })
  if (made.status === 404) throw notFound(`no such container "${idOrName}"`, 'is it running? docker ps')
  if (made.status === 409) throw notFound(`container "${idOrName}" is not running`, `start it: docker start ${idOrName}`)
  if (made.status !== 201) throw apiFailure(e, `exec in container "${idOrName}"`, made)
  const id = (made.body as { Id: string }).Id
  const started = await apiRequest(e, 'POST', `${API}/exec/${id}/start`, { Detach: false, Tty: false }, opts.timeoutMs ?? 30_000, { raw: true })
  const { status } = started
  const body = started.body as Buffer
  if (status !== 200) throw new PlumbError('FAILED', `failed to start exec in "${idOrName}": ${ENGINE_TITLE[e.engine]} API answered ${status}${apiMessage(body.toString()) ? `: ${apiMessage(body.toString())}` : ''}`)
  const { stdout, stderr } = demux(body)
  const info = await apiGet(e, `${API}/exec/${id}/json`)
  if (info.status !== 200) throw apiFailure(e, `read the exit code of exec in "${idOrName}"`, info)
  const exitCode = (info.body as { ExitCode?: number | null }).ExitCode
  return { exitCode: typeof exitCode === 'number' ? exitCode : -1, stdout, stderr }
}

/** Docker's multiplexed stream: frames of [stream 1|2, 0, 0, 0, size u32 BE] + payload. */
export function demux(b: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = []
  const err: Buffer[] = []
  let at = 0
  while (at + 8 <= b.length) {
    const kind = b[at]!
    const size = b.readUInt32BE(at + 4)
    const payload = b.subarray(at + 8, at + 8 + size)
    ;(kind === 2 ? err : out).push(payload)
    at += 8 + size
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
}

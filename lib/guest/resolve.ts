// resolveGuest: a GuestRef (container, pid, ip netns, path, host, self) to an open Netns handle.

import { closeSync } from 'node:fs'
import { PlumbError, conflict, notFound } from '../errors.js'
import { lookupContainer, noSuchContainer } from './engine.js'
import { netnsPathsOf, sharedNetnsOf } from './inspect.js'
import { assertNetNs, closeQuietly, hostNetnsPath, isHostNs, openNsFile } from './nsfile.js'
import type { OpenedNs } from './nsfile.js'
import type { ContainerInfo, EngineName, GuestRef, Netns, NetnsContainer, ResolveOptions } from './types.js'

interface Found {
  opened: OpenedNs
  label: string
  key?: string
  pid?: number
  container?: NetnsContainer
  /** the CONFLICT message when this turns out to be the host's netns */
  hostRefusal: string
  /** the engine says so (--net=host), whatever the inodes say */
  hostByConfig?: boolean
}

function makeNetns(ref: GuestRef, f: Found, isHost: boolean): Netns {
  let open = true
  return {
    ref,
    label: f.label,
    key: f.key ?? `ino:${f.opened.ino}`,
    fd: f.opened.fd,
    path: f.opened.path,
    ino: f.opened.ino,
    dev: f.opened.dev,
    isHost,
    ...(f.pid !== undefined ? { pid: f.pid } : {}),
    ...(f.container ? { container: f.container } : {}),
    close() {
      if (!open) return
      open = false
      closeQuietly(f.opened.fd)
    },
  }
}

function procPath(pid: number): string {
  return `/proc/${pid}/ns/net`
}

function byPid(pid: number): Found {
  const opened = openNsFile(procPath(pid), {
    what: `the network namespace of pid ${pid}`,
    notFound: () => notFound(`no process with pid ${pid}`, `check the pid (ps -p ${pid}); for a container, name it instead: its pid changes when it restarts`),
  })
  return { opened, label: `pid:${pid}`, pid, hostRefusal: `pid ${pid} is in the host's network namespace` }
}

function byNetnsName(name: string): Found {
  const p = `/run/netns/${name}`
  const opened = openNsFile(p, {
    what: `ip netns "${name}"`,
    notFound: () => notFound(`no such network namespace "${name}" (no ${p})`, `ip netns list shows the names; create one with: ip netns add ${name}`),
  })
  try {
    assertNetNs(opened)
  } catch {
    // A plain file left in /run/netns (its mount is gone): the netns no longer exists.
    throw notFound(`network namespace "${name}" is gone: ${p} is not mounted`, `remove the stale file (ip netns delete ${name}) and create it again`)
  }
  return { opened, label: `netns:${name}`, hostRefusal: `netns "${name}" is the host's network namespace` }
}

function byPath(p: string): Found {
  const opened = openNsFile(p, {
    what: 'the namespace file',
    notFound: () => notFound(`no such file "${p}"`, 'give an existing netns file: /proc/PID/ns/net, /run/netns/NAME or /var/run/docker/netns/ID'),
  })
  assertNetNs(opened)
  const m = /^\/proc\/(\d+)\/ns\/net$/.exec(p)
  return { opened, label: p, ...(m ? { pid: Number(m[1]) } : {}), hostRefusal: `"${p}" is the host's network namespace` }
}

/** Open the first path that exists (SandboxKey may be missing if the engine runs in another mount namespace). */
function openContainerNs(info: ContainerInfo, shown: string): OpenedNs {
  const paths = netnsPathsOf(info)
  const gone = () => notFound(`container "${shown}" is not running`, `it stopped while plumb was looking it up; start it: ${info.engine} start ${shown}`)
  if (paths.length === 0) throw gone()
  for (const [i, p] of paths.entries()) {
    try {
      const opened = openNsFile(p, { what: `the network namespace of container "${shown}"`, notFound: gone })
      assertNetNs(opened, p)
      return opened
    } catch (err) {
      if (i === paths.length - 1 || !(err instanceof PlumbError) || (err.code !== 'NOT_FOUND' && err.code !== 'USAGE')) throw err
    }
  }
  throw gone()
}

async function byContainer(engine: EngineName, name: string, env: NodeJS.ProcessEnv): Promise<Found> {
  const l = await lookupContainer(name, engine, env)
  const info = l.info
  if (!info) throw noSuchContainer(name, l.tried)
  const shown = info.name || name
  // At once, no retry loop: a stopped container has no netns to plumb.
  if (!info.running) throw notFound(`container "${shown}" is not running`, `start it first: ${engine} start ${shown}`)
  let sharedWith: string | undefined
  const owner = sharedNetnsOf(info)
  if (owner) {
    // Only for the report (`ls` says whose netns it is); the netns itself is opened through this container.
    const o = await l.again(owner).catch(() => undefined)
    sharedWith = o?.name || owner
  }
  const opened = openContainerNs(info, shown)
  if (opened.path.startsWith('/proc/')) {
    // Opened through a pid, not the engine's bind mount: make sure that pid was still the
    // container's when we opened it (it could have exited and the pid been reused meanwhile).
    // An engine that fails this second look says nothing about the container: its error stands
    // (gc must not read "could not ask" as "stopped").
    let now: ContainerInfo | undefined
    try {
      now = await l.again(info.id)
    } catch (err) {
      closeQuietly(opened.fd)
      throw err
    }
    if (!now?.running || now.pid !== info.pid) {
      closeQuietly(opened.fd)
      throw notFound(`container "${shown}" is not running`, `it stopped while plumb was looking it up; start it: ${engine} start ${shown}`)
    }
  }
  return {
    opened,
    label: `${engine}:${shown}`,
    key: info.id,
    ...(info.pid > 0 ? { pid: info.pid } : {}),
    container: { engine, id: info.id, name: shown, networkMode: info.networkMode, ...(sharedWith !== undefined ? { sharedWith } : {}) },
    hostRefusal: `container "${shown}" uses the host's network namespace${info.networkMode === 'host' ? ' (--net=host)' : ''}`,
    hostByConfig: info.networkMode === 'host',
  }
}

async function find(ref: GuestRef, env: NodeJS.ProcessEnv): Promise<Found> {
  switch (ref.kind) {
    case 'container':
      return byContainer(ref.engine === 'podman' ? 'podman' : 'docker', ref.name, env)
    case 'pid':
      return byPid(ref.pid)
    case 'netns':
      return byNetnsName(ref.name)
    case 'path':
      return byPath(ref.path)
    case 'host': {
      const p = hostNetnsPath()
      return { opened: openNsFile(p, { what: "the host's network namespace", notFound: () => notFound(`cannot open the host's network namespace (${p})`, 'is /proc mounted?') }), label: 'host', hostRefusal: '' }
    }
    case 'self': {
      const p = '/proc/self/ns/net'
      return { opened: openNsFile(p, { what: 'our own network namespace', notFound: () => notFound(`cannot open ${p}`, 'is /proc mounted?') }), label: 'self', pid: process.pid, hostRefusal: "plumb's own network namespace (self) is the host's" }
    }
  }
}

/**
 * Resolve a guest to its network namespace, opened once (the fd is held until close()).
 * Refuses (CONFLICT, exit 4) a guest whose netns is the host's own unless allowHost; `host` itself is always allowed.
 */
export async function resolveGuest(ref: GuestRef, opts: ResolveOptions = {}): Promise<Netns> {
  const f = await find(ref, opts.env ?? process.env)
  const isHost = ref.kind === 'host' || f.hostByConfig === true || isHostNs(f.opened)
  if (isHost && ref.kind !== 'host' && !opts.allowHost) {
    closeSync(f.opened.fd)
    throw conflict(f.hostRefusal, 'pass --allow-host to plumb the host itself')
  }
  return makeNetns(ref, f, isHost)
}

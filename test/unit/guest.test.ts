// Unit tests for lib/guest's pure parts (DOCKER_HOST parsing, inspect JSON mapping) and the file-based resolvers that need no root.

import test from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync, fstatSync, readFileSync, statSync } from 'node:fs'
import { PlumbError } from '../../lib/errors.js'
import {
  containerFromInspect,
  hostNetnsIno,
  INIT_NET_INO,
  netnsPathsOf,
  parseEngineHost,
  resolveGuest,
  sharedNetnsOf,
  summaryFromList,
} from '../../lib/guest/index.js'

// ---- DOCKER_HOST / CONTAINER_HOST ----

const hosts: Array<[string | undefined, 'docker' | 'podman', string]> = [
  [undefined, 'docker', '/var/run/docker.sock'],
  ['', 'docker', '/var/run/docker.sock'],
  ['  ', 'docker', '/var/run/docker.sock'],
  ['unix:///var/run/docker.sock', 'docker', '/var/run/docker.sock'],
  ['unix:///tmp/pt-x/d.sock', 'docker', '/tmp/pt-x/d.sock'],
  ['unix:/run/user/1000/docker.sock', 'docker', '/run/user/1000/docker.sock'],
  [undefined, 'podman', '/run/podman/podman.sock'],
  ['unix:///run/podman/podman.sock', 'podman', '/run/podman/podman.sock'],
]

for (const [value, engine, socketPath] of hosts) {
  test(`parseEngineHost(${JSON.stringify(value)}, ${engine}) -> ${socketPath}`, (t) => {
    t.is(parseEngineHost(value, engine, {}).socketPath, socketPath)
  })
}

test('parseEngineHost marks where the socket came from', (t) => {
  t.is(parseEngineHost('unix:///x/d.sock', 'docker', {}).fromEnv, 'DOCKER_HOST')
  t.is(parseEngineHost('unix:///x/p.sock', 'podman', {}).fromEnv, 'CONTAINER_HOST')
  t.is(parseEngineHost(undefined, 'docker', {}).fromEnv, undefined)
})

const badHosts: Array<[string, 'docker' | 'podman', RegExp]> = [
  ['tcp://198.18.0.1:2375', 'docker', /DOCKER_HOST "tcp:\/\/198\.18\.0\.1:2375".*only supports unix sockets, not tcp:\/\//],
  ['ssh://user@host', 'docker', /only supports unix sockets, not ssh:\/\//],
  ['npipe:////./pipe/docker_engine', 'docker', /not npipe/],
  ['fd://', 'docker', /not fd/],
  ['ssh://root@host/run/podman/podman.sock', 'podman', /CONTAINER_HOST .*not ssh/],
  ['unix://relative/docker.sock', 'docker', /unsupported DOCKER_HOST/],
  ['unix:///', 'docker', /is not a socket path/],
  ['/var/run/docker.sock', 'docker', /expected unix:\/\/\/path/],
]

for (const [value, engine, message] of badHosts) {
  test(`parseEngineHost refuses ${value}`, (t) => {
    const err = t.throws(() => parseEngineHost(value, engine, {}), { instanceOf: PlumbError }) as PlumbError
    t.is(err.code, 'USAGE')
    t.is(err.exitCode, 2)
    t.regex(err.message, message)
    t.regex(err.hint ?? '', engine === 'docker' ? /DOCKER_HOST=unix:\/\/\/var\/run\/docker\.sock/ : /CONTAINER_HOST=unix:\/\//)
  })
}

test('rootless podman socket default is under XDG_RUNTIME_DIR', async (t) => {
  const { defaultSocket } = await import('../../lib/guest/endpoint.js')
  t.is(defaultSocket('podman', { XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), '/run/user/1000/podman/podman.sock')
  t.is(defaultSocket('podman', { XDG_RUNTIME_DIR: '/run/user/0' }, 0), '/run/podman/podman.sock')
})

// ---- inspect JSON mapping (trimmed from real Docker 20.10 / podman answers) ----

const ID_A = '327e55d399061c6f4e2f3007a0c2e4ee9209aaa404f11078079b8fa212fe9ab5'
const ID_B = '299fdb747b04aa11b4d7c1bb1f2b0fb22b9cb0e7cc4f0d1f9f8f3b0c1d2e3f40'

const dockerNone = {
  Id: ID_A,
  Name: '/web',
  State: { Status: 'running', Running: true, Paused: false, Pid: 8034 },
  HostConfig: { NetworkMode: 'none' },
  NetworkSettings: { SandboxKey: '/var/run/docker/netns/943a3f84e555', Networks: { none: {} } },
}
const dockerShared = {
  Id: ID_B,
  Name: '/sidecar',
  State: { Status: 'running', Running: true, Paused: false, Pid: 8097 },
  HostConfig: { NetworkMode: `container:${ID_A}` },
  NetworkSettings: { SandboxKey: '', Networks: {} },
}
const dockerHost = {
  Id: ID_B,
  Name: '/hostnet',
  State: { Running: true, Pid: 8151 },
  HostConfig: { NetworkMode: 'host' },
  NetworkSettings: { SandboxKey: '/var/run/docker/netns/default' },
}
const dockerStopped = {
  Id: ID_A,
  Name: '/web',
  State: { Status: 'exited', Running: false, Paused: false, Pid: 0, ExitCode: 137 },
  HostConfig: { NetworkMode: 'none' },
  NetworkSettings: { SandboxKey: '' },
}
// `podman inspect` (libpod format): same keys for what we read.
const podmanInspect = {
  Id: ID_A,
  Name: 'db',
  State: { Status: 'running', Running: true, Paused: false, Pid: 4242 },
  HostConfig: { NetworkMode: 'bridge' },
  NetworkSettings: { SandboxKey: '/run/netns/netns-8f6a3f8e-1b2c' },
}

test('containerFromInspect: --net=none container with a SandboxKey', (t) => {
  const c = containerFromInspect('docker', dockerNone)
  t.deepEqual(c, { engine: 'docker', id: ID_A, name: 'web', running: true, paused: false, pid: 8034, sandboxKey: '/var/run/docker/netns/943a3f84e555', networkMode: 'none' })
  t.deepEqual(netnsPathsOf(c), ['/var/run/docker/netns/943a3f84e555', '/proc/8034/ns/net'])
  t.is(sharedNetnsOf(c), undefined)
})

test('containerFromInspect: --net=container:X has no SandboxKey; its netns is reached through its pid', (t) => {
  const c = containerFromInspect('docker', dockerShared)
  t.is(c.name, 'sidecar')
  t.is(c.sandboxKey, '')
  t.deepEqual(netnsPathsOf(c), ['/proc/8097/ns/net'])
  t.is(sharedNetnsOf(c), ID_A)
})

test('containerFromInspect: --net=host', (t) => {
  const c = containerFromInspect('docker', dockerHost)
  t.is(c.networkMode, 'host')
  t.is(c.paused, false)
  t.is(sharedNetnsOf(c), undefined)
})

test('containerFromInspect: a stopped container has no pid and no netns path', (t) => {
  const c = containerFromInspect('docker', dockerStopped)
  t.false(c.running)
  t.is(c.pid, 0)
  t.deepEqual(netnsPathsOf(c), [])
})

test('containerFromInspect: podman inspect output', (t) => {
  const c = containerFromInspect('podman', podmanInspect)
  t.is(c.engine, 'podman')
  t.is(c.name, 'db')
  t.deepEqual(netnsPathsOf(c), ['/run/netns/netns-8f6a3f8e-1b2c', '/proc/4242/ns/net'])
})

test('containerFromInspect: a stale pid on a non-running container is ignored', (t) => {
  t.is(containerFromInspect('docker', { ...dockerStopped, State: { Running: false, Pid: 77 } }).pid, 0)
})

test('containerFromInspect: garbage without an Id is a FAILED error, not a crash', (t) => {
  for (const j of [null, 'x', [], {}, { Name: '/x' }]) {
    const err = t.throws(() => containerFromInspect('docker', j), { instanceOf: PlumbError }) as PlumbError
    t.is(err.code, 'FAILED')
  }
})

test('containerFromInspect: missing sections default to empty', (t) => {
  t.deepEqual(containerFromInspect('docker', { Id: ID_A }), { engine: 'docker', id: ID_A, name: '', running: false, paused: false, pid: 0, sandboxKey: '', networkMode: '' })
})

test('summaryFromList: a row of GET /containers/json', (t) => {
  const row = { Id: ID_A, Names: ['/other/alias', '/web'], State: 'running', Status: 'Up 2 minutes', HostConfig: { NetworkMode: 'none' } }
  t.deepEqual(summaryFromList('docker', row), { engine: 'docker', id: ID_A, name: 'web', running: true })
  t.is(summaryFromList('docker', { ...row, State: 'exited' })?.running, false)
  t.is(summaryFromList('docker', { Id: ID_A })?.name, ID_A.slice(0, 12))
  t.is(summaryFromList('docker', {}), undefined)
})

// ---- file-based resolvers (no root needed for these) ----

const selfIno = statSync('/proc/self/ns/net').ino

test('self resolves to our own netns; it is the host here, so it needs allowHost', async (t) => {
  const ns = await resolveGuest({ kind: 'self' }, { allowHost: true })
  t.teardown(() => ns.close())
  t.is(ns.label, 'self')
  t.is(ns.pid, process.pid)
  t.is(fstatSync(ns.fd).ino, selfIno)
  t.is(ns.ino, selfIno)
  t.is(ns.key, `ino:${selfIno}`)
  // Our netns is the host's unless this test runs inside a container's own netns.
  if (ns.isHost) {
    const err = await t.throwsAsync(resolveGuest({ kind: 'self' }), { instanceOf: PlumbError })
    t.is(err?.code, 'CONFLICT')
    t.is(err?.exitCode, 4)
    t.is(err?.hint, 'pass --allow-host to plumb the host itself')
  }
})

test('host is allowed without allowHost and is the host netns', async (t) => {
  const ns = await resolveGuest({ kind: 'host' })
  t.teardown(() => ns.close())
  t.true(ns.isHost)
  t.is(ns.label, 'host')
  t.is(fstatSync(ns.fd).ino, hostNetnsIno())
})

test('close() is idempotent and really closes the fd', async (t) => {
  const ns = await resolveGuest({ kind: 'host' })
  ns.close()
  ns.close()
  t.throws(() => fstatSync(ns.fd), { code: 'EBADF' })
})

;(selfIno === INIT_NET_INO ? test : test.skip)('the initial netns inode constant matches the kernel (checkable only in the initial netns)', (t) => {
  t.is(hostNetnsIno(), INIT_NET_INO)
})

test('a path that is not a namespace file is a usage error (exit 2)', async (t) => {
  const err = await t.throwsAsync(resolveGuest({ kind: 'path', path: '/etc/passwd' }), { instanceOf: PlumbError })
  t.is(err?.code, 'USAGE')
  t.is(err?.exitCode, 2)
  t.is(err?.message, '"/etc/passwd" is not a network namespace file')
})

test('a directory is not a namespace file either', async (t) => {
  const err = await t.throwsAsync(resolveGuest({ kind: 'path', path: '/proc/self/ns' }), { instanceOf: PlumbError })
  t.is(err?.code, 'USAGE')
})

test('a namespace file of another type is refused and named', async (t) => {
  const err = await t.throwsAsync(resolveGuest({ kind: 'path', path: '/proc/self/ns/mnt' }), { instanceOf: PlumbError })
  t.is(err?.code, 'USAGE')
  t.regex(err?.message ?? '', /is not a network namespace file \(it is a mnt namespace\)/)
})

test('a missing path is NOT_FOUND (exit 3)', async (t) => {
  const err = await t.throwsAsync(resolveGuest({ kind: 'path', path: '/run/pt-none/x' }), { instanceOf: PlumbError })
  t.is(err?.code, 'NOT_FOUND')
  t.is(err?.exitCode, 3)
})

test('a /proc/PID/ns/net path carries the pid', async (t) => {
  const ns = await resolveGuest({ kind: 'path', path: `/proc/${process.pid}/ns/net` }, { allowHost: true })
  t.teardown(() => ns.close())
  t.is(ns.pid, process.pid)
  t.is(ns.label, `/proc/${process.pid}/ns/net`)
  t.is(ns.ino, selfIno)
})

function freePid(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'))
  for (let p = max - 1; p > 1; p--) if (!existsSync(`/proc/${p}`)) return p
  throw new Error('no free pid')
}

test('a pid with no process is NOT_FOUND "no process with pid N"', async (t) => {
  const pid = freePid()
  const err = await t.throwsAsync(resolveGuest({ kind: 'pid', pid }), { instanceOf: PlumbError })
  t.is(err?.code, 'NOT_FOUND')
  t.is(err?.message, `no process with pid ${pid}`)
})

test('pid resolves to that process netns', async (t) => {
  const ns = await resolveGuest({ kind: 'pid', pid: process.pid }, { allowHost: true })
  t.teardown(() => ns.close())
  t.is(ns.label, `pid:${process.pid}`)
  t.is(ns.ino, Number(execFileSync('stat', ['-L', '-c', '%i', `/proc/${process.pid}/ns/net`], { encoding: 'utf8' }).trim()))
})

test('netns:NAME that does not exist is NOT_FOUND with an ip netns hint', async (t) => {
  const err = await t.throwsAsync(resolveGuest({ kind: 'netns', name: 'pt-none-404' }), { instanceOf: PlumbError })
  t.is(err?.code, 'NOT_FOUND')
  t.regex(err?.hint ?? '', /ip netns list/)
})

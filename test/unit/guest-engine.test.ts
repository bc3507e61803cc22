// The Engine API client against a fake Docker/Podman API on a unix socket: 404s, stopped and shared containers, host detection, podman fallbacks.

import test from 'ava'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { PlumbError } from '../../lib/errors.js'
import { engineStatus, inspectContainer, isHostNs, listContainers, resolveGuest } from '../../lib/guest/index.js'
import { testIf } from '../helpers/env.js'

const ID_WEB = 'a'.repeat(64)
const ID_OWNER = 'b'.repeat(64)
const ID_SIDE = 'c'.repeat(64)
const selfIno = statSync('/proc/self/ns/net').ino

function freePid(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'))
  for (let p = max - 1; p > 1; p--) if (!existsSync(`/proc/${p}`)) return p
  throw new Error('no free pid')
}
const deadPid = freePid()

const running = (id: string, name: string, extra: { pid?: number; mode?: string; sandboxKey?: string } = {}) => ({
  Id: id,
  Name: `/${name}`,
  State: { Status: 'running', Running: true, Paused: false, Pid: extra.pid ?? process.pid },
  HostConfig: { NetworkMode: extra.mode ?? 'none' },
  NetworkSettings: { SandboxKey: extra.sandboxKey ?? '' },
})

// The fake engine's containers. Every "running" one lives in this test process's netns (the host's,
// unless the suite runs inside a container), which is what lets the inode-based host check be tested.
const containers: Record<string, unknown> = {
  'pt-web': running(ID_WEB, 'pt-web'),
  [ID_WEB]: running(ID_WEB, 'pt-web'),
  'pt-owner': running(ID_OWNER, 'pt-owner'),
  [ID_OWNER]: running(ID_OWNER, 'pt-owner'),
  'pt-side': running(ID_SIDE, 'pt-side', { mode: `container:${ID_OWNER}` }),
  [ID_SIDE]: running(ID_SIDE, 'pt-side', { mode: `container:${ID_OWNER}` }),
  'pt-hostnet': running(ID_WEB, 'pt-hostnet', { mode: 'host', sandboxKey: '/proc/self/ns/net' }),
  'pt-sbx': running(ID_WEB, 'pt-sbx', { sandboxKey: '/run/pt-missing/netns/x' }),
  'pt-gone': running(ID_WEB, 'pt-gone', { pid: deadPid }),
  // By name: pid = ours; by id (the re-check after opening /proc/PID/ns/net): another pid, as if it restarted.
  'pt-reused': running('d'.repeat(64), 'pt-reused'),
  ['d'.repeat(64)]: running('d'.repeat(64), 'pt-reused', { pid: deadPid }),
  'pt-stopped': { Id: ID_WEB, Name: '/pt-stopped', State: { Status: 'exited', Running: false, Pid: 0 }, HostConfig: { NetworkMode: 'none' }, NetworkSettings: { SandboxKey: '' } },
}

const requests: string[] = []
const dir = mkdtempSync('/tmp/pt-target-')
const sock = join(dir, 'engine.sock')
const server = http.createServer((req, res) => {
  requests.push(req.url ?? '')
  const send = (status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const url = req.url ?? ''
  if (url === '/v1.41/version') return send(200, { Version: '99.0-fake', ApiVersion: '1.41' })
  if (url === '/v1.41/containers/json?all=1') {
    return send(200, [
      { Id: ID_WEB, Names: ['/pt-web'], State: 'running', HostConfig: { NetworkMode: 'none' } },
      { Id: ID_OWNER, Names: ['/pt-stopped-row'], State: 'exited', HostConfig: { NetworkMode: 'none' } },
    ])
  }
  const m = /^\/v1\.41\/containers\/([^/]+)\/json$/.exec(url)
  const name = m ? decodeURIComponent(m[1]!) : ''
  if (name === 'pt-500') return send(500, { message: 'fake engine exploded' })
  if (m && containers[name]) return send(200, containers[name])
  send(404, { message: `No such container: ${name}` })
})
// Long server-side keep-alive: a client that failed to unref its idle socket would hang the child test below.
server.keepAliveTimeout = 60_000

const env = { DOCKER_HOST: `unix://${sock}`, CONTAINER_HOST: `unix://${sock}`, PATH: process.env.PATH ?? '' }
const missing = join(dir, 'missing.sock')

test.before(async () => {
  await new Promise<void>((resolve) => server.listen(sock, resolve))
})
test.after.always(() => {
  server.closeAllConnections()
  server.close()
  rmSync(dir, { recursive: true, force: true })
})

async function fails(t: import('ava').ExecutionContext, p: Promise<unknown>, code: PlumbError['code']): Promise<PlumbError> {
  const err = (await t.throwsAsync(p, { instanceOf: PlumbError })) as PlumbError
  t.is(err.code, code)
  return err
}

test('a running container resolves by name: label, key, pid, container fields', async (t) => {
  const ns = await resolveGuest({ kind: 'container', engine: 'auto', name: 'pt-web' }, { allowHost: true, env })
  t.teardown(() => ns.close())
  t.is(ns.label, 'docker:pt-web')
  t.is(ns.key, ID_WEB)
  t.is(ns.pid, process.pid)
  t.is(ns.path, `/proc/${process.pid}/ns/net`)
  t.is(ns.ino, selfIno)
  t.deepEqual(ns.container, { engine: 'docker', id: ID_WEB, name: 'pt-web', networkMode: 'none' })
})

test('by id: the label uses the name the engine reports', async (t) => {
  const ns = await resolveGuest({ kind: 'container', engine: 'docker', name: ID_WEB }, { allowHost: true, env })
  t.teardown(() => ns.close())
  t.is(ns.label, 'docker:pt-web')
})

// The fake's containers live in this process's netns: they are "on the host's" only when it is.
const selfNs = statSync('/proc/self/ns/net')
const inHostNs = testIf(isHostNs({ dev: selfNs.dev, ino: selfNs.ino }), "host detection: this suite runs in a netns of its own, so the fake's containers are not on the host's")

inHostNs('a container whose netns is the host one (by inode, whatever NetworkMode says) is refused with exit 4', async (t) => {
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-web' }, { env }), 'CONFLICT')
  t.is(err.exitCode, 4)
  t.is(err.message, 'container "pt-web" uses the host\'s network namespace')
  t.is(err.hint, 'pass --allow-host to plumb the host itself')
})

test('--net=host is refused with its own words, and allowed with allowHost', async (t) => {
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-hostnet' }, { env }), 'CONFLICT')
  t.is(err.message, 'container "pt-hostnet" uses the host\'s network namespace (--net=host)')
  const ns = await resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-hostnet' }, { allowHost: true, env })
  t.teardown(() => ns.close())
  t.true(ns.isHost)
})

test('--net=container:X reports the owner by name (one more API call)', async (t) => {
  const ns = await resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-side' }, { allowHost: true, env })
  t.teardown(() => ns.close())
  t.is(ns.container?.sharedWith, 'pt-owner')
  t.is(ns.key, ID_SIDE)
  t.true(requests.includes(`/v1.41/containers/${ID_OWNER}/json`))
})

test('a stopped container is NOT_FOUND at once: one request, no retry', async (t) => {
  const before = requests.filter((u) => u.includes('pt-stopped')).length
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-stopped' }, { env }), 'NOT_FOUND')
  t.is(err.exitCode, 3)
  t.is(err.message, 'container "pt-stopped" is not running')
  t.regex(err.hint ?? '', /docker start pt-stopped/)
  t.is(requests.filter((u) => u.includes('pt-stopped')).length - before, 1)
})

test('a container that died between inspect and open is "not running"', async (t) => {
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-gone' }, { env }), 'NOT_FOUND')
  t.regex(err.message, /"pt-gone" is not running/)
})

test('a pid that stopped being the container\'s while we opened it is refused, fd closed', async (t) => {
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-reused' }, { allowHost: true, env }), 'NOT_FOUND')
  t.regex(err.message, /"pt-reused" is not running/)
})

test('a SandboxKey we cannot see falls back to /proc/PID/ns/net', async (t) => {
  const ns = await resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-sbx' }, { allowHost: true, env })
  t.teardown(() => ns.close())
  t.is(ns.path, `/proc/${process.pid}/ns/net`)
})

test('an unknown name is NOT_FOUND and the hint says what was tried', async (t) => {
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'auto', name: 'pt-nope' }, { env }), 'NOT_FOUND')
  t.is(err.message, 'no such container "pt-nope"')
  t.true(err.hint?.includes(`the Docker API at ${sock}`))
  t.regex(err.hint ?? '', /netns:NAME/)
  t.regex(err.hint ?? '', /pid:N/)
})

test('an engine error other than 404 is FAILED with its message', async (t) => {
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-500' }, { env }), 'FAILED')
  t.regex(err.message, /answered 500: fake engine exploded/)
})

test('DOCKER_HOST pointing at a missing socket: NOT_FOUND, hint asks whether dockerd runs', async (t) => {
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-web' }, { env: { DOCKER_HOST: `unix://${missing}` } }), 'NOT_FOUND')
  t.is(err.exitCode, 3)
  t.is(err.hint?.startsWith(`is dockerd running? (tried unix://${missing}`), true)
})

test('a non-unix DOCKER_HOST is a usage error', async (t) => {
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-web' }, { env: { DOCKER_HOST: 'tcp://198.18.0.1:2375' } }), 'USAGE')
  t.regex(err.message, /only supports unix sockets/)
})

test('podman:NAME goes to the Podman socket (CONTAINER_HOST)', async (t) => {
  const ns = await resolveGuest({ kind: 'container', engine: 'podman', name: 'pt-web' }, { allowHost: true, env })
  t.teardown(() => ns.close())
  t.is(ns.label, 'podman:pt-web')
  t.is(ns.container?.engine, 'podman')
})

test('podman without a socket falls back to `podman inspect` on PATH', async (t) => {
  const bin = mkdtempSync('/tmp/pt-podbin-')
  t.teardown(() => rmSync(bin, { recursive: true, force: true }))
  const json = JSON.stringify([running(ID_WEB, 'pt-pod', { mode: 'bridge' })])
  // A fake podman: shell builtins only (PATH holds nothing else); logs its argv.
  writeFileSync(
    join(bin, 'podman'),
    `#!/bin/sh\necho "$@" >> ${bin}/argv\nif [ "$1 $2 $3 $4" = "inspect --type container pt-pod" ] || [ "$1 $2 $3 $4" = "inspect --type container ${ID_WEB}" ]; then echo '${json}'; exit 0; fi\necho "Error: no such container $4" >&2\nexit 125\n`,
  )
  chmodSync(join(bin, 'podman'), 0o755)
  const podEnv = { CONTAINER_HOST: `unix://${missing}`, PATH: bin }
  const ns = await resolveGuest({ kind: 'container', engine: 'podman', name: 'pt-pod' }, { allowHost: true, env: podEnv })
  t.teardown(() => ns.close())
  t.is(ns.label, 'podman:pt-pod')
  t.is(ns.ino, selfIno)
  t.is(readFileSync(join(bin, 'argv'), 'utf8').split('\n')[0], 'inspect --type container pt-pod')
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'podman', name: 'pt-nope' }, { env: podEnv }), 'NOT_FOUND')
  t.regex(err.hint ?? '', /podman inspect/)
})

test('podman with neither socket nor binary is UNSUPPORTED naming both', async (t) => {
  const err = await fails(t, resolveGuest({ kind: 'container', engine: 'podman', name: 'pt-web' }, { env: { CONTAINER_HOST: `unix://${missing}`, PATH: '/run/pt-none' } }), 'UNSUPPORTED')
  t.is(err.exitCode, 5)
  t.regex(err.message, new RegExp(`no API socket at ${missing} and no podman binary on PATH`))
})

test('inspectContainer: the lower-level lookup', async (t) => {
  const c = await inspectContainer('pt-side', 'docker', env)
  t.is(c.networkMode, `container:${ID_OWNER}`)
  await fails(t, inspectContainer('pt-nope', 'docker', env), 'NOT_FOUND')
})

test.serial('listContainers: one list request, no inspect each; an engine it cannot ask is an error, not "no containers"', async (t) => {
  const before = requests.length
  const rows = await listContainers('docker', env)
  t.deepEqual(
    rows.map((r) => [r.name, r.running]),
    [
      ['pt-web', true],
      ['pt-stopped-row', false],
    ],
  )
  t.deepEqual(requests.slice(before), ['/v1.41/containers/json?all=1'])
  const down = await t.throwsAsync(listContainers('docker', { DOCKER_HOST: `unix://${missing}` }))
  t.regex(down!.message, /Docker API not reachable at .*: ENOENT/)
  await fails(t, listContainers('docker', { DOCKER_HOST: 'tcp://198.18.0.1:1' }), 'USAGE')
})

test('engineStatus: version when reachable, the reason when not', async (t) => {
  t.deepEqual(await engineStatus('docker', env), { ok: true, detail: `Docker 99.0-fake (API 1.41) at unix://${sock}` })
  const down = await engineStatus('docker', { DOCKER_HOST: `unix://${missing}` })
  t.false(down.ok)
  t.regex(down.detail, /ENOENT/)
  const pod = await engineStatus('podman', { CONTAINER_HOST: `unix://${missing}`, PATH: '/run/pt-none' })
  t.false(pod.ok)
})

test('idle keep-alive connections do not keep a process alive', async (t) => {
  const mod = new URL('../../lib/guest/index.js', import.meta.url).href
  const script = `const m = await import(${JSON.stringify(mod)}); const ns = await m.resolveGuest({ kind: 'container', engine: 'docker', name: 'pt-side' }, { allowHost: true, env: ${JSON.stringify(env)} }); ns.close(); console.log(ns.container.sharedWith)`
  const started = Date.now()
  const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    // The server keeps idle connections 60 s: a child still alive after 10 s is held by a socket.
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout })
    })
  })
  t.is(out.code, 0)
  t.is(out.stdout.trim(), 'pt-owner')
  t.log(`child exited after ${Date.now() - started} ms`)
  t.true(Date.now() - started < 10_000)
})

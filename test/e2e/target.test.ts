// e2e: resolveGuest against real dockerd containers and ip netns; every fd is checked against the kernel's own view (stat -L).

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, fstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PlumbError } from '../../lib/errors.js'
import { parseGuestRef } from '../../lib/parse/index.js'
import { listContainers, resolveGuest } from '../../lib/guest/index.js'
import type { Netns } from '../../lib/guest/index.js'

const IMAGE = 'plumb-test:busybox'

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}
function works(cmd: string, args: string[]): boolean {
  try {
    sh(cmd, args)
    return true
  } catch {
    return false
  }
}

const isRoot = process.getuid?.() === 0
const hasDocker = isRoot && existsSync('/var/run/docker.sock') && works('docker', ['image', 'inspect', IMAGE])
const hasIpNetns = isRoot && works('ip', ['netns', 'list'])
const withDocker = hasDocker ? test : test.skip
const withNetns = hasIpNetns ? test : test.skip
if (!hasDocker) console.error(`target e2e: skipping container tests (${isRoot ? `no dockerd on /var/run/docker.sock or no image ${IMAGE}` : 'needs root'})`)

const uid = () => randomBytes(3).toString('hex')

/** `docker run -d ... sleep`, removed in teardown; returns its name. */
function container(t: ExecutionContext, net: string, suffix = ''): string {
  const name = `pt-${uid()}${suffix}`
  t.teardown(() => {
    try {
      sh('docker', ['rm', '-f', name])
    } catch {
      /* already gone */
    }
  })
  sh('docker', ['run', '-d', `--net=${net}`, '--name', name, IMAGE, 'sleep', '100000'])
  return name
}

const inspect = (name: string, fmt: string) => sh('docker', ['inspect', '-f', fmt, name])
const pidOf = (name: string) => Number(inspect(name, '{{.State.Pid}}'))
/** The kernel's view: the inode of the netns a file names. */
const inoOf = (p: string) => Number(sh('stat', ['-L', '-c', '%i', p]))

function keep(t: ExecutionContext, ns: Netns): Netns {
  t.teardown(() => ns.close())
  return ns
}

async function code(t: ExecutionContext, p: Promise<unknown>, want: PlumbError['code']): Promise<PlumbError> {
  const err = (await t.throwsAsync(p, { instanceOf: PlumbError })) as PlumbError
  t.is(err.code, want, err.message)
  return err
}

withDocker('a --net=none container resolves by name, id, docker: prefix, pid and netns paths, all to its netns', async (t) => {
  const name = container(t, 'none')
  const id = inspect(name, '{{.Id}}')
  const pid = pidOf(name)
  const sandbox = inspect(name, '{{.NetworkSettings.SandboxKey}}')
  const want = inoOf(`/proc/${pid}/ns/net`)
  t.not(want, inoOf('/proc/self/ns/net'))

  const forms = [name, id, id.slice(0, 12), `docker:${name}`, `pid:${pid}`, String(pid), sandbox, `/proc/${pid}/ns/net`]
  for (const form of forms) {
    const ns = keep(t, await resolveGuest(parseGuestRef(form)))
    t.is(fstatSync(ns.fd).ino, want, form)
    t.is(ns.ino, want, form)
    t.false(ns.isHost, form)
  }
  const byName = keep(t, await resolveGuest(parseGuestRef(name)))
  t.is(byName.label, `docker:${name}`)
  t.is(byName.key, id)
  t.is(byName.pid, pid)
  t.is(byName.path, sandbox)
  t.deepEqual(byName.container, { engine: 'docker', id, name, networkMode: 'none' })
  const byPid = keep(t, await resolveGuest(parseGuestRef(`pid:${pid}`)))
  t.is(byPid.label, `pid:${pid}`)
  t.is(byPid.key, `ino:${want}`)
})

withDocker('the fd keeps naming the same netns after the container is gone (no pid-reuse race)', async (t) => {
  const name = container(t, 'none')
  const want = inoOf(`/proc/${pidOf(name)}/ns/net`)
  const ns = keep(t, await resolveGuest(parseGuestRef(name)))
  sh('docker', ['rm', '-f', name])
  t.is(fstatSync(ns.fd).ino, want)
})

withDocker('--net=container:X works and reports whose netns it is', async (t) => {
  const owner = container(t, 'none')
  const side = container(t, `container:${owner}`, '-s')
  const ns = keep(t, await resolveGuest(parseGuestRef(side)))
  t.is(ns.container?.sharedWith, owner)
  t.is(ns.container?.name, side)
  t.is(fstatSync(ns.fd).ino, inoOf(`/proc/${pidOf(owner)}/ns/net`))
  t.false(ns.isHost)
})

withDocker('--net=host is refused with exit 4, and allowed with allowHost', async (t) => {
  const name = container(t, 'host', '-h')
  const err = await code(t, resolveGuest(parseGuestRef(name)), 'CONFLICT')
  t.is(err.exitCode, 4)
  t.is(err.message, `container "${name}" uses the host's network namespace (--net=host)`)
  t.is(err.hint, 'pass --allow-host to plumb the host itself')
  const ns = keep(t, await resolveGuest(parseGuestRef(name), { allowHost: true }))
  t.true(ns.isHost)
  t.is(fstatSync(ns.fd).ino, inoOf('/proc/self/ns/net'))
})

withDocker('a stopped container is NOT_FOUND (exit 3) at once', async (t) => {
  const name = `pt-${uid()}-x`
  t.teardown(() => {
    try {
      sh('docker', ['rm', '-f', name])
    } catch {
      /* gone */
    }
  })
  sh('docker', ['create', '--net=none', '--name', name, IMAGE, 'sleep', '1'])
  const started = performance.now()
  const err = await code(t, resolveGuest(parseGuestRef(name)), 'NOT_FOUND')
  t.log(`refused after ${(performance.now() - started).toFixed(1)} ms`)
  t.is(err.exitCode, 3)
  t.is(err.message, `container "${name}" is not running`)
})

withDocker('an unknown name is NOT_FOUND and the hint names the socket tried', async (t) => {
  const name = `pt-${uid()}-none`
  const err = await code(t, resolveGuest(parseGuestRef(name)), 'NOT_FOUND')
  t.is(err.exitCode, 3)
  t.is(err.message, `no such container "${name}"`)
  t.regex(err.hint ?? '', /Docker API at \/var\/run\/docker\.sock/)
})

withDocker('DOCKER_HOST pointing at a missing socket: exit 3 and a hint', async (t) => {
  const name = container(t, 'none')
  const sock = `/run/pt-${uid()}/docker.sock`
  const err = await code(t, resolveGuest(parseGuestRef(name), { env: { DOCKER_HOST: `unix://${sock}` } }), 'NOT_FOUND')
  t.is(err.exitCode, 3)
  t.is(err.hint, `is dockerd running? (tried unix://${sock}; set DOCKER_HOST=unix://PATH for another socket)`)
})

withDocker('DOCKER_HOST from the environment is honoured', async (t) => {
  const name = container(t, 'none')
  const ns = keep(t, await resolveGuest(parseGuestRef(name), { env: { DOCKER_HOST: 'unix:///var/run/docker.sock' } }))
  t.is(fstatSync(ns.fd).ino, inoOf(`/proc/${pidOf(name)}/ns/net`))
})

withDocker('podman:NAME through a Docker-compatible API socket (CONTAINER_HOST)', async (t) => {
  const name = container(t, 'none')
  const ns = keep(t, await resolveGuest(parseGuestRef(`podman:${name}`), { env: { CONTAINER_HOST: 'unix:///var/run/docker.sock' } }))
  t.is(ns.label, `podman:${name}`)
  t.is(fstatSync(ns.fd).ino, inoOf(`/proc/${pidOf(name)}/ns/net`))
})

withDocker('podman:NAME without a socket uses `podman inspect` (a stand-in that asks docker)', async (t) => {
  const name = container(t, 'none')
  const bin = mkdtempSync('/tmp/pt-podman-')
  t.teardown(() => rmSync(bin, { recursive: true, force: true }))
  const docker = sh('sh', ['-c', 'command -v docker'])
  writeFileSync(join(bin, 'podman'), `#!/bin/sh\nexec ${docker} "$@"\n`)
  chmodSync(join(bin, 'podman'), 0o755)
  const env = { CONTAINER_HOST: `unix://${bin}/none.sock`, PATH: `${bin}:${process.env.PATH ?? ''}` }
  const ns = keep(t, await resolveGuest(parseGuestRef(`podman:${name}`), { env }))
  t.is(ns.label, `podman:${name}`)
  t.is(fstatSync(ns.fd).ino, inoOf(`/proc/${pidOf(name)}/ns/net`))
  await code(t, resolveGuest(parseGuestRef(`podman:pt-${uid()}-none`), { env }), 'NOT_FOUND')
})

withDocker('listContainers shows a running container by its name and id', async (t) => {
  const name = container(t, 'none')
  const row = (await listContainers()).find((c) => c.name === name)
  t.truthy(row)
  t.is(row?.id, inspect(name, '{{.Id}}'))
  t.true(row?.running)
})

withNetns('netns:NAME from ip netns add', async (t) => {
  const name = `pt-${uid()}`
  sh('ip', ['netns', 'add', name])
  t.teardown(() => {
    try {
      sh('ip', ['netns', 'del', name])
    } catch {
      /* gone */
    }
  })
  const ns = keep(t, await resolveGuest(parseGuestRef(`netns:${name}`)))
  t.is(ns.label, `netns:${name}`)
  t.is(ns.path, `/run/netns/${name}`)
  t.is(fstatSync(ns.fd).ino, inoOf(`/run/netns/${name}`))
  t.false(ns.isHost)
  // The same netns as a path.
  const byPath = keep(t, await resolveGuest(parseGuestRef(`/run/netns/${name}`)))
  t.is(byPath.ino, ns.ino)
  t.is(byPath.label, `/run/netns/${name}`)
})

withNetns('a stale /run/netns file (not mounted) is NOT_FOUND', async (t) => {
  const name = `pt-${uid()}`
  writeFileSync(`/run/netns/${name}`, '')
  t.teardown(() => rmSync(`/run/netns/${name}`, { force: true }))
  const err = await code(t, resolveGuest(parseGuestRef(`netns:${name}`)), 'NOT_FOUND')
  t.regex(err.message, /is not mounted/)
})

test('a path that is not a netns file is exit 2', async (t) => {
  const err = await code(t, resolveGuest(parseGuestRef('/etc/passwd')), 'USAGE')
  t.is(err.exitCode, 2)
  t.is(err.message, '"/etc/passwd" is not a network namespace file')
})

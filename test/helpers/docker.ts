// Throwaway `docker run` containers of the test image (removed in teardown) and their netns coordinates.

import { spawn } from 'node:child_process'
import { mkdirSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { TEST_IMAGE, uniq, waitFor } from './env.js'
import type { Teardown } from './env.js'
import { sh, shQuiet } from './netns.js'
import { processAlive } from './process.js'

export interface TestContainer {
  name: string
  id: string
  /** pid of its init (sleep), in the host's pid namespace */
  pid: number
  /** Docker's netns file (/var/run/docker/netns/...); '' for --net=container:X / host */
  sandboxKey: string
}

/**
 * A running plumb-test:busybox container (`sleep 100000`), `--net=none` unless said otherwise
 * (`net: 'container:NAME'`, `'host'`, a network name), removed with `docker rm -f` in teardown.
 */
export async function makeContainer(t: Teardown, opts: { net?: string; name?: string; image?: string; args?: string[]; cmd?: string[] } = {}): Promise<TestContainer> {
  const name = opts.name ?? uniq()
  // Registered before the run: a run that fails half-way may still leave a created container.
  t.teardown(async () => {
    await shQuiet('docker', ['rm', '-f', '-v', name])
    // plumb recorded what it did to the container (for replay); removed without a detach, the
    // record stays until a gc or a watch forgets it: the test's own leftover, forgotten here
    forgetRecordsNamed(name)
  })
  await sh('docker', ['run', '-d', `--net=${opts.net ?? 'none'}`, '--name', name, ...(opts.args ?? []), opts.image ?? TEST_IMAGE, ...(opts.cmd ?? ['sleep', '100000'])])
  return inspectContainer(name)
}

/** name, id, pid and SandboxKey of a running container. */
export async function inspectContainer(name: string): Promise<TestContainer> {
  const out = await sh('docker', ['inspect', '-f', '{{.Name}}|{{.Id}}|{{.State.Pid}}|{{.NetworkSettings.SandboxKey}}', name])
  const [n = '', id = '', pid = '0', sandboxKey = ''] = out.split('|')
  return { name: n.replace(/^\//, ''), id, pid: Number(pid), sandboxKey }
}

/** Stop a container at once (SIGKILL: busybox sleep as pid 1 ignores SIGTERM); it stays for inspection. */
export async function stopContainer(name: string): Promise<void> {
  await sh('docker', ['stop', '-t', '0', name])
}

/** The default store of plumb's replay records (lib/watch/store.ts; PLUMB_RECORDS_DIR points the CLI elsewhere). */
export const RECORDS_DIR = '/var/lib/plumb/records'

/** Remove the replay records of containers of that name from a record store (default: the host's). */
export function forgetRecordsNamed(name: string, dir = RECORDS_DIR): void {
  let files: string[]
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'))
  } catch {
    return // no store: nothing was ever recorded
  }
  for (const f of files) {
    try {
      if ((JSON.parse(readFileSync(join(dir, f), 'utf8')) as { name?: unknown }).name === name) rmSync(join(dir, f), { force: true })
    } catch {
      // unreadable: not a record of a test's container
    }
  }
}

export interface PrivateDockerd {
  sock: string
  /** DOCKER_HOST for plumb */
  host: string
  start(): Promise<void>
  stop(): Promise<void>
  /** load the test image from the machine's dockerd into this one */
  loadTestImage(): Promise<void>
  docker(...args: string[]): Promise<string>
}

/**
 * A dockerd of the test's own under /run/<id>-dockerd (the test image loaded into it by
 * loadTestImage), removed (stopped by its pid first) in teardown. It runs in a network namespace of its own: started with --bridge=none, dockerd
 * deletes any `docker0` it finds in its netns (moby's removeDefaultBridgeInterface), and in the
 * host's that is the machine's dockerd's default bridge.
 */
export function privateDockerd(t: Teardown, id: string): PrivateDockerd {
  const dir = `/run/${id}-dockerd`
  const netns = `${id}-dn`
  const sock = `${dir}/docker.sock`
  mkdirSync(dir, { recursive: true })
  let pid: number | undefined
  const docker = (...args: string[]): Promise<string> => sh('docker', ['-H', `unix://${sock}`, ...args])
  const d: PrivateDockerd = {
    sock,
    host: `unix://${sock}`,
    docker,
    async start() {
      if ((await shQuiet('ip', ['netns', 'pids', netns])).exitCode !== 0) await sh('ip', ['netns', 'add', netns])
      const log = openSync(`${dir}/dockerd.log`, 'a')
      // nsenter --net only, not `ip netns exec`: that one remounts /sys for the netns, and dockerd
      // then finds no cgroup mounted ("Devices cgroup isn't mounted"). nsenter execs dockerd: the
      // pid is the daemon's own, stopped by it.
      const proc = spawn(
        'nsenter',
        [
          `--net=/run/netns/${netns}`, '--', 'dockerd',
          '--data-root', `${dir}/data`,
          '--exec-root', `${dir}/exec`,
          '--pidfile', `${dir}/docker.pid`,
          '-H', `unix://${sock}`,
          '--bridge=none', '--iptables=false', '--ip-masq=false',
          // containers get 1 s to stop (busybox's sleep ignores SIGTERM): a restart takes seconds, not tens
          '--shutdown-timeout=1', '--log-level=warn',
        ],
        { stdio: ['ignore', log, log], detached: false },
      )
      pid = proc.pid
      proc.unref()
      await waitFor(async () => (await shQuiet('docker', ['-H', `unix://${sock}`, 'version', '--format', '{{.Server.Version}}'])).exitCode === 0, { timeout: 30_000, what: 'the private dockerd to answer' })
    },
    async loadTestImage() {
      await sh('sh', ['-c', `docker save ${TEST_IMAGE} | docker -H unix://${sock} load -q`])
    },
    async stop() {
      if (pid === undefined || !processAlive(pid)) return
      process.kill(pid, 'SIGTERM')
      const p = pid
      await waitFor(() => !processAlive(p), { timeout: 40_000, interval: 100, what: `the private dockerd (pid ${p}) to exit` })
    },
  }
  t.teardown(async () => {
    if (pid !== undefined && processAlive(pid)) {
      await shQuiet('docker', ['-H', `unix://${sock}`, 'rm', '-f', '-v', ...(await shQuiet('docker', ['-H', `unix://${sock}`, 'ps', '-aq'])).stdout.split(/\s+/).filter(Boolean)])
      await d.stop()
    }
    rmSync(dir, { recursive: true, force: true })
    await shQuiet('ip', ['netns', 'del', netns])
  })
  return d
}

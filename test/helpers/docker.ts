// Throwaway `docker run` containers of the test image (removed in teardown) and their netns coordinates.

import { readFileSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { TEST_IMAGE, uniq } from './env.js'
import type { Teardown } from './env.js'
import { sh, shQuiet } from './netns.js'

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

// What the test machine offers (root, Docker, OVS, binaries) and unique `pt-` names for every test object.

import test from 'ava'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants, mkdirSync, rmSync, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'

/** The image scripts/testbed.sh builds: busybox with sh, ip, ping, udhcpc, sleep, nc, wget ... */
export const TEST_IMAGE = 'plumb-test:busybox'
/** IFNAMSIZ - 1: the kernel refuses longer interface names. */
export const IFNAME_MAX = 15

export const isRoot = process.getuid?.() === 0

// No test makes a TLS connection, and a CA bundle named in the environment costs every node the
// suite starts ~30 ms of CPU before it runs anything (node reads and parses it at start-up): the
// suite starts node several thousand times (plumb as `node dist/plumb.cjs`, which the launcher's
// unsetting of it in native/launcher.c does not cover; the traffic echoes). Gone for every child of a
// test process; the launcher's tests of it set their own.
delete process.env.NODE_EXTRA_CA_CERTS

/** The minimal slice of ava's ExecutionContext the helpers need (so helpers also work from hooks). */
export interface Teardown {
  teardown(fn: (() => Promise<void>) | (() => void)): void
}

function succeeds(cmd: string, args: string[], timeout = 15_000): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout })
    return true
  } catch {
    return false
  }
}

let dockerCache: boolean | undefined
/**
 * A Docker engine answers and has the test image. Sync (one `docker image inspect`, cached) so
 * a test file can decide `const withDocker = hasDocker() ? test : test.skip` at load time.
 */
export function hasDocker(): boolean {
  dockerCache ??= hasBinary('docker') && succeeds('docker', ['image', 'inspect', '--format', '{{.Id}}', TEST_IMAGE])
  return dockerCache
}

let ovsCache: boolean | undefined
/** ovsdb answers (`ovs-vsctl show`). Bridges still need datapath_type=netdev here: no kernel module. */
export function hasOvs(): boolean {
  ovsCache ??= hasBinary('ovs-vsctl') && succeeds('ovs-vsctl', ['--timeout=2', 'show'], 5_000)
  return ovsCache
}

const binCache = new Map<string, boolean>()
/** An executable of that name on PATH (or in the sbin dirs a non-login root shell may lack). */
export function hasBinary(name: string): boolean {
  let found = binCache.get(name)
  if (found === undefined) {
    const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin']
    found = dirs.some((dir) => {
      if (!dir) return false
      try {
        accessSync(join(dir, name), constants.X_OK)
        return true
      } catch {
        return false
      }
    })
    binCache.set(name, found)
  }
  return found
}

/**
 * A unique test name: `pt-` + 6 random hex chars + suffix (`pt` + hex + suffix with
 * `{ dash: false }`, for names that can't take a dash). Throws if it would exceed 15 bytes,
 * because the kernel would refuse it as an interface name.
 */
export function uniq(suffix = '', opts: { dash?: boolean } = {}): string {
  const name = `${opts.dash === false ? 'pt' : 'pt-'}${randomBytes(3).toString('hex')}${suffix}`
  const bytes = Buffer.byteLength(name)
  if (bytes > IFNAME_MAX) throw new Error(`test name "${name}" is ${bytes} bytes, over the ${IFNAME_MAX}-byte interface name limit: shorten the suffix "${suffix}"`)
  return name
}

/** Take the hold on one /24 (an atomic mkdir), released in teardown; false while another running test has it. One older than an hour is a crashed run's, taken over. */
function holdNet(t: Teardown, prefix: string, octet: number): boolean {
  return hold(t, `/run/pt-net-${prefix}.${octet}`)
}

/** Take the hold `dir` (an atomic mkdir), as holdNet. */
function hold(t: Teardown, dir: string): boolean {
  try {
    mkdirSync(dir)
  } catch {
    try {
      if (Date.now() - statSync(dir).mtimeMs < 3_600_000) return false
    } catch {
      return false // released meanwhile: try again
    }
  }
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return true
}

/**
 * The /24s the course's recipes and lab files (recipes/) take, fixed: 198.18.50-99 and
 * 198.19.50-99. Their tests wait while another test holds one (reserveFixedNets), so no random
 * pick lands there: a recipe waiting behind a crash case that happened to pick its /24 held one
 * of ava's places for minutes.
 */
const FIXED_BAND: [number, number] = [50, 99]

/**
 * The third octet of a /24 of `prefix` (198.18 or 198.19, the benchmarking range) that no other
 * test running on the machine holds, for the rest of the test: random picks collided now and
 * then between ava's workers (two bridges with one subnet, or a guest's address local to the
 * host). Held by an atomic mkdir of /run/pt-net-PREFIX.OCTET, removed in teardown (registered
 * first, it runs last). Never one of the fixed files' (FIXED_BAND).
 */
export function reserveOctet(t: Teardown, prefix: '198.18' | '198.19' = '198.18', range: [number, number] = [2, 250]): number {
  const [lo, hi] = range
  const free: number[] = []
  for (let o = lo; o <= hi; o++) if (o < FIXED_BAND[0] || o > FIXED_BAND[1]) free.push(o)
  for (let tries = 0; tries < 2000 && free.length > 0; tries++) {
    const octet = free[Math.floor(Math.random() * free.length)]!
    if (holdNet(t, prefix, octet)) return octet
  }
  throw new Error(`no free /24 in ${prefix}.${lo}-${hi} outside the recipes' ${FIXED_BAND.join('-')}: every one is held (leftover /run/pt-net-* directories?)`)
}

/**
 * Hold every /24 a file with fixed addresses uses (a course recipe, a lab file), waiting while
 * another test holds one: so no test's reserved /24 is one of them while it runs. Then every host
 * port it publishes (expose's "HOST:GUEST"): two such files run at once on the host (the
 * publishing recipe and the publishing lab) would find their port taken. Taken in order, nets
 * first, so two such tests never wait on each other.
 */
export async function reserveFixedNets(t: Teardown, text: string): Promise<void> {
  const nets = [...new Set([...text.matchAll(/\b(198\.1[89])\.(\d{1,3})\.\d{1,3}/g)].map((m) => `${m[1]} ${m[2]}`))].sort()
  for (const net of nets) {
    const [prefix = '', octet = ''] = net.split(' ')
    while (!holdNet(t, prefix, Number(octet))) await new Promise((r) => setTimeout(r, 100))
  }
  const ports = [...new Set([...text.matchAll(/["'\s[](\d{2,5}):\d{1,5}(?:\/(?:tcp|udp))?(?=["'\s,\]])/g)].map((m) => Number(m[1])))].sort((a, b) => a - b)
  for (const port of ports) while (!hold(t, `/run/pt-port-${port}`)) await new Promise((r) => setTimeout(r, 100))
}

const reported = new Set<string>()
/**
 * `test` when the condition holds, else `test.skip`, saying once why (ava prints skips without a reason).
 *   const withDocker = testIf(isRoot && hasDocker(), 'needs root and dockerd with plumb-test:busybox')
 */
export function testIf(condition: boolean, reason: string): typeof test | typeof test.skip {
  if (!condition && !reported.has(reason)) {
    reported.add(reason)
    console.error(`skipping: ${reason}`)
  }
  return condition ? test : test.skip
}

/**
 * How long to wait for what dies with a netns (a veth's other end, a bridge port) once its last
 * user is gone: the kernel tears a netns down later, in a work queue, one after another; under
 * CI's churn of netns (the crash cases make and delete hundreds) that took over 5 s.
 */
export const NETNS_TEARDOWN_MS = 30_000

/** Poll until `check` returns a truthy value (returned), or throw after `timeout` ms: never a bare sleep. */
export async function waitFor<T>(check: () => T | Promise<T>, opts: { timeout?: number; interval?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const { timeout = 5_000, interval = 50, what = 'condition' } = opts
  const deadline = Date.now() + timeout
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, interval))
  }
}

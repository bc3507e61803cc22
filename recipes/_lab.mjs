// Shared bits of the lab recipes: guests (Docker --net=none containers when an engine and the
// image are there, `ip netns` stand-ins otherwise), a prefix for every name so a lab can be run
// by the test suite, and a teardown that always runs. Each lab takes the same options:
//   --prefix P   names everything P-... (default lab; the test suite gives a pt- one)
//   --image I    the guests' image (default plumb-test:busybox)
//   --netns      ip netns guests even when Docker is there
import { spawn } from 'node:child_process'
import { $, argv, chalk } from 'zx'
import { detach } from 'plumb'

$.verbose = false
$.quiet = true
export const prefix = String(argv.prefix || 'lab')
const image = String(argv.image || 'plumb-test:busybox')
export const docker = argv.netns ? false : (await $`docker image inspect ${image}`.nothrow()).exitCode === 0

export const step = (text) => console.log(chalk.bold(`\n==> ${text}`))
export const ok = (text) => console.log(chalk.green(`ok: ${text}`))

/**
 * PREFIX-SUFFIX for a guest (container or netns). Checked for the characters Docker allows in a
 * container name; with `{ ifname: true }` (bridges: interface names) also refused over 15 bytes
 * (IFNAMSIZ), because cutting a long prefix short could make two names collide.
 */
export function named(suffix, { ifname = false } = {}) {
  const full = `${prefix}-${suffix}`
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(full)) throw new Error(`bad name "${full}": --prefix may hold only letters, digits, '_', '.', '-'`)
  if (ifname && Buffer.byteLength(full) > 15) throw new Error(`interface name "${full}" is over 15 bytes: use a --prefix of at most ${14 - suffix.length} bytes`)
  return full
}
/** PREFIX-SUFFIX as an interface name (a bridge): at most 15 bytes. */
export const ifnamed = (suffix) => named(suffix, { ifname: true })

const made = []
let stopping = false
const checkRunning = () => {
  if (stopping) throw new Error('interrupted')
}

/** A --net=none guest named PREFIX-NAME; returns its plumb guest ref. */
export async function guest(name) {
  checkRunning()
  const full = named(name)
  const ref = docker ? `docker:${full}` : `netns:${full}`
  // Recorded before it exists, so a teardown that starts meanwhile still removes it.
  made.push({ full, ref })
  if (docker) {
    await $`docker rm -f ${full}`.nothrow()
    await $`docker run -d --net=none --name ${full} ${image} sleep 100000`
  } else {
    await $`ip netns del ${full}`.nothrow()
    await $`ip netns add ${full}`
    await $`ip -n ${full} link set lo up`
  }
  checkRunning()
  return ref
}

/** Run a command inside a guest's netns (with the host's tools: the image may have none). */
export function inside(ref, ...cmd) {
  return $`${process.execPath} ${new URL('../dist/plumb.cjs', import.meta.url).pathname} exec ${ref} -- ${cmd}`.nothrow()
}

/** Run a command with the guest's own files (and, for a container, its own programs): plumb exec --mount. */
export function insideWithFiles(ref, ...cmd) {
  return $`${process.execPath} ${new URL('../dist/plumb.cjs', import.meta.url).pathname} exec --mount ${ref} -- ${cmd}`.nothrow()
}

/** The netns file of a guest, for nsenter (a container's init, or /run/netns/NAME). */
async function netnsPath(ref) {
  const [kind, name] = [ref.slice(0, ref.indexOf(':')), ref.slice(ref.indexOf(':') + 1)]
  if (kind === 'netns') return `/run/netns/${name}`
  const pid = (await $`docker inspect -f {{.State.Pid}} ${name}`).stdout.trim()
  return `/proc/${pid}/ns/net`
}

/**
 * A long-running command inside a guest's netns (with the host's binaries, as inside()), e.g. a
 * server; stopped by its pid at teardown. nsenter execs the command, so the pid is the server's.
 */
export async function background(ref, ...cmd) {
  checkRunning()
  // spawned directly, not through zx's shell: its pid is then the command's own (nsenter execs it),
  // and a signal to it is one to the server, not to a shell that would leave it running
  const child = spawn('nsenter', [`--net=${await netnsPath(ref)}`, '--', ...cmd], { stdio: 'ignore' })
  const ended = new Promise((resolve) => child.once('exit', resolve))
  onTeardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await ended
  })
}

/** Poll `check` (async, truthy when done) for up to `seconds`; true if it came true. */
export async function eventually(check, seconds = 10) {
  for (const end = Date.now() + seconds * 1000; Date.now() < end; ) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 200))
  }
  return false
}

export async function pingable(ref, addr) {
  return (await inside(ref, 'ping', '-c', '1', '-W', '2', addr)).exitCode === 0
}

export function expect(cond, what) {
  checkRunning()
  if (!cond) throw new Error(`lab check failed: ${what}`)
  ok(what)
}

const cleanups = []
/** Undo something the lab made outside plumb; run last-registered first, after the guests' detach. */
export const onTeardown = (fn) => cleanups.push(fn)

/** What still carries the prefix (netns, host links, containers, OVS bridges): must be nothing. */
async function leftovers() {
  const mine = (name) => name === prefix || name.startsWith(`${prefix}-`)
  const lines = async (p) => ((await p).stdout || '').split('\n').map((l) => l.trim().split(/\s/)[0]).filter(Boolean)
  const found = []
  for (const n of await lines($`ip netns list`.nothrow())) if (mine(n)) found.push(`netns ${n}`)
  for (const l of JSON.parse((await $`ip -j link show`.nothrow()).stdout || '[]')) if (mine(l.ifname)) found.push(`link ${l.ifname}`)
  if (docker) for (const c of await lines($`docker ps -a --format {{.Names}}`.nothrow())) if (mine(c)) found.push(`container ${c}`)
  for (const b of await lines($`ovs-vsctl --timeout=5 list-br`.nothrow())) if (mine(b)) found.push(`OVS bridge ${b}`)
  return found
}

let tornDown
/** Detach every guest, run the lab's own undo steps, remove the guests; once, however it is reached. */
export function teardown() {
  tornDown ??= (async () => {
    step('tear down')
    for (const { ref } of made) await detach({ guest: ref, all: true }).catch((e) => console.error(chalk.yellow(`detach ${ref}: ${e.message}`)))
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch((e) => console.error(chalk.yellow(`teardown step: ${e.message}`)))
    for (const { full } of made) {
      if (docker) await $`docker rm -f ${full}`.nothrow()
      else await $`ip netns del ${full}`.nothrow()
    }
    const left = await leftovers()
    if (left.length) {
      console.error(chalk.red(`left behind: ${left.join(', ')}`))
      return false
    }
    console.log('nothing left behind')
    return true
  })()
  return tornDown
}

let running = Promise.resolve()
// Interrupted (Ctrl-C, a test's timeout): let the step in flight settle (a few seconds at most:
// it may be what hangs), still tear down, then exit as the signal would.
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.once(sig, async () => {
    console.error(chalk.red(`\n${sig}: tearing down`))
    stopping = true
    await Promise.race([running, new Promise((r) => setTimeout(r, 5000))])
    await teardown().catch(() => {})
    process.exit(code)
  })
}

/** Run a lab body with teardown, exiting 1 on a failed check or on anything left behind. */
export async function lab(title, body) {
  console.log(chalk.bold.blue(`# ${title}`) + chalk.dim(` (${docker ? 'Docker containers' : 'ip netns guests'}, prefix ${prefix})`))
  let failed = false
  try {
    const run = body()
    running = run.catch(() => {})
    await run
  } catch (err) {
    failed = true
    console.error(chalk.red(`FAILED: ${err.message}`))
  }
  const clean = await teardown()
  process.exitCode = failed || !clean ? 1 : 0
}

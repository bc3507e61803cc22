// Shared bits of the lab recipes: guests (Docker --net=none containers when an engine and the
// image are there, `ip netns` stand-ins otherwise), a prefix for every name so a lab can be run
// by the test suite (PLUMB_LAB_PREFIX=pt-...), and a teardown that always runs.
import { $, chalk } from 'zx'
import { detach } from 'plumb'

$.verbose = false
$.quiet = true
export const prefix = process.env.PLUMB_LAB_PREFIX ?? 'lab'
const image = process.env.PLUMB_LAB_IMAGE ?? 'plumb-test:busybox'
export const docker = process.env.PLUMB_LAB_NETNS ? false : (await $`docker image inspect ${image}`.nothrow()).exitCode === 0

export const step = (text) => console.log(chalk.bold(`\n==> ${text}`))
export const ok = (text) => console.log(chalk.green(`ok: ${text}`))

const made = []
/** A --net=none guest named PREFIX-NAME; returns its plumb guest ref. */
export async function guest(name) {
  const full = `${prefix}-${name}`
  if (docker) {
    await $`docker rm -f ${full}`.nothrow()
    await $`docker run -d --net=none --name ${full} ${image} sleep 100000`
  } else {
    await $`ip netns del ${full}`.nothrow()
    await $`ip netns add ${full}`
    await $`ip -n ${full} link set lo up`
  }
  const ref = docker ? `docker:${full}` : `netns:${full}`
  made.push({ full, ref })
  return ref
}

/** Run a command inside a guest's netns (with the host's tools: the image may have none). */
export function inside(ref, ...cmd) {
  return $`${process.execPath} ${new URL('../dist/plumb.mjs', import.meta.url).pathname} exec ${ref} -- ${cmd}`.nothrow()
}

export async function pingable(ref, addr) {
  return (await inside(ref, 'ping', '-c', '1', '-W', '2', addr)).exitCode === 0
}

export function expect(cond, what) {
  if (!cond) throw new Error(`lab check failed: ${what}`)
  ok(what)
}

const cleanups = []
export const onTeardown = (fn) => cleanups.push(fn)

export async function teardown() {
  step('tear down')
  for (const { ref } of made) await detach({ guest: ref, all: true }).catch(() => {})
  for (const fn of cleanups.reverse()) await fn().catch?.(() => {})
  for (const { full } of made) {
    if (docker) await $`docker rm -f ${full}`.nothrow()
    else await $`ip netns del ${full}`.nothrow()
  }
  console.log('nothing left behind')
}

/** Run a lab body with teardown, exiting 1 on a failed check. */
export async function lab(title, body) {
  console.log(chalk.bold.blue(`# ${title}`) + chalk.dim(` (${docker ? 'Docker containers' : 'ip netns guests'})`))
  let failed = false
  try {
    await body()
  } catch (err) {
    failed = true
    console.error(chalk.red(`FAILED: ${err.message}`))
  } finally {
    await teardown()
  }
  process.exitCode = failed ? 1 : 0
}

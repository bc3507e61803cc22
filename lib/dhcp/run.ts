// Starting a supervised DHCP client for a guest's interface, waiting for its lease, and stopping it.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { PlumbError, conflict, notFound, usageError } from '../errors.js'
import { checkClientChoice, dhclientConf, nsenterArgv, resolveClient, resolveNsenter, which } from './clients.js'
import type { DhcpClientChoice, ResolvedClient } from './clients.js'
import { SUPERVISOR_SCRIPT, hookScript } from './scripts.js'
import { dhcpStateDir } from '../config.js'
import { isOurs, readHookLease, readMeta, readPid, startedIn, statePaths, toLease } from './state.js'
import type { Lease, LeaseMeta, StatePaths } from './state.js'
import { run, spawnChild } from '../proc.js'
import { writeFileAtomic } from '../write-file.js'
import { netnsAt } from '../guest/nsfile.js'

export interface StartDhcpOptions {
  /** netns file to enter: /proc/PID/ns/net, /run/netns/X, a Docker SandboxKey */
  nsPath: string
  /** the guest in messages */
  guestLabel: string
  /** names the state dir: a container id or `ino:<netns inode>`; unique per guest */
  stateKey: string
  ifname: string
  client?: DhcpClientChoice
  /** seconds to wait for a lease; default 10 */
  timeoutSec?: number
  hostname?: string
  /** write the offered DNS servers into the guest's own /etc/resolv.conf, via its mount namespace */
  resolv?: { mntNsPath: string } | false
  /** the guest's liveness: its init pid and/or its netns file; default: nsPath */
  watch?: { pid?: number; path?: string }
}

export interface StopDhcpOptions {
  stateKey: string
  ifname: string
  /** send a DHCPRELEASE first (udhcpc SIGUSR2, dhclient -r) */
  release: boolean
  /** only a client started in one of these netns (by inode, and cookie where both are known): another is a later run's, under the same state key */
  onlyInNetns?: ReadonlyArray<{ ino: number; cookie?: number }>
}

export interface StopResult {
  /** false: there was no state dir (already stopped) */
  stopped: boolean
  released: boolean
  /** what was done, as lines for messages */
  steps: string[]
}

const POLL_MS = 50

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Poll `cond` every POLL_MS until it holds or `ms` pass; true if it held. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (cond()) return true
    if (Date.now() >= end) return false
    await sleep(POLL_MS)
  }
}

function inode(path: string): number | undefined {
  try {
    return statSync(path).ino
  } catch {
    return undefined
  }
}

/** `meta`'s netns is still the one at its path. */
function stillItsNetns(meta: LeaseMeta): boolean {
  const now = netnsAt(meta.nsPath)
  return now !== undefined && startedIn(meta, now)
}

function argvInput(o: Pick<StartDhcpOptions, 'nsPath' | 'stateKey' | 'ifname' | 'hostname'>) {
  return { nsPath: o.nsPath, stateKey: o.stateKey, ifname: o.ifname, ...(o.hostname ? { hostname: o.hostname } : {}) }
}

/**
 * The command plumb runs for this lease, for --dry-run. Synchronous and never throws: with no
 * client installed it renders the one `auto` would pick first (udhcpc).
 */
export function dhcpArgv(o: Pick<StartDhcpOptions, 'nsPath' | 'stateKey' | 'ifname' | 'hostname' | 'client'>): string[] {
  const choice = checkClientChoice(o.client ?? 'auto')
  let client: ResolvedClient
  try {
    client = resolveClient(choice)
  } catch {
    // not installed here: the plan still shows the command it would run
    const kind = choice !== 'auto' ? choice : 'udhcpc'
    client = { kind, argv0: [kind] }
  }
  return nsenterArgv(which('nsenter') ?? 'nsenter', client, argvInput(o))
}

function validate(o: StartDhcpOptions): number {
  if (!o.nsPath) throw usageError('no netns path given for the DHCP client')
  if (!o.stateKey) throw usageError('no state key given for the DHCP client')
  if (!o.ifname || Buffer.byteLength(o.ifname) > 15 || /[/\s:%]/.test(o.ifname)) throw usageError(`invalid interface name "${o.ifname}"`)
  const t = o.timeoutSec ?? 10
  if (!(Number.isFinite(t) && t > 0)) throw usageError(`the DHCP timeout must be a positive number of seconds, not "${t}"`)
  if (o.hostname !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(o.hostname)) {
    throw usageError(`"${o.hostname}" is not a valid hostname`, 'letters, digits, dots and dashes')
  }
  return t
}

/** Last non-empty lines of a log, read through an fd we kept (the file may be unlinked by then). */
function tail(fd: number, lines = 3): string {
  try {
    const buf = Buffer.alloc(16384)
    const n = readSync(fd, buf, 0, buf.length, 0)
    return buf.subarray(0, n).toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean).slice(-lines).join(' | ')
  } catch {
    return ''
  }
}

/**
 * Run a DHCP client in the guest's netns under a supervisor that lives as long as the guest,
 * and wait (bounded) for the first lease. Both run detached: they survive plumb's exit.
 */
export async function startDhcp(opts: StartDhcpOptions): Promise<Lease> {
  const timeoutSec = validate(opts)
  const client = resolveClient(checkClientChoice(opts.client ?? 'auto'))
  const nsenter = resolveNsenter()
  const ns = netnsAt(opts.nsPath)
  if (ns === undefined) throw notFound(`failed to open netns "${opts.nsPath}" of ${opts.guestLabel}: it does not exist`, 'is the guest still running?')

  let mnt: { path: string; ino: number } | undefined
  if (opts.resolv) {
    const ino = inode(opts.resolv.mntNsPath)
    if (ino === undefined) throw notFound(`failed to open the mount namespace "${opts.resolv.mntNsPath}" of ${opts.guestLabel}`, 'is the guest still running?')
    // a guest that shares our mount namespace has no /etc of its own: writing "its"
    // resolv.conf would rewrite the host's, exactly pipework's bug
    if (ino === inode('/proc/self/ns/mnt')) {
      throw conflict(`${opts.guestLabel} shares the host's mount namespace: --resolv would write the host's /etc/resolv.conf`, 'drop --resolv for this guest')
    }
    mnt = { path: opts.resolv.mntNsPath, ino }
  }

  const watch = opts.watch && (opts.watch.pid !== undefined || opts.watch.path) ? opts.watch : { path: opts.nsPath }
  const wpidIno = watch.pid !== undefined ? inode(`/proc/${watch.pid}/ns/net`) : undefined
  if (watch.pid !== undefined && wpidIno === undefined) throw notFound(`guest pid ${watch.pid} of ${opts.guestLabel} is gone`)
  const wpathIno = watch.path ? inode(watch.path) : undefined
  if (watch.path && wpathIno === undefined) throw notFound(`guest netns file "${watch.path}" of ${opts.guestLabel} is gone`)

  const p = statePaths(opts.stateKey, opts.ifname)
  mkdirSync(dhcpStateDir(), { recursive: true, mode: 0o755 })
  const existing = readMeta(p)
  if (existing || existsSync(p.dir)) {
    // The same key (a container's id) in another netns: the container restarted, and the old
    // netns's supervisor takes about a second to see its guest gone. Its client runs in a netns
    // that is no more the guest's: a leftover, stopped here, not a client already running.
    const sameNetns = existing === undefined || startedIn(existing, ns)
    if (sameNetns && isOurs(readPid(p.supervisorPid), p.dir)) {
      throw conflict(`a DHCP client already runs for ${opts.guestLabel} ${opts.ifname} (supervisor pid ${readPid(p.supervisorPid)})`, `release it first: plumb dhcp ${opts.guestLabel} ${opts.ifname} --release`)
    }
    await stopDhcp({ stateKey: opts.stateKey, ifname: opts.ifname, release: false }) // a leftover
  }
  try {
    // not recursive: creating the dir is the lock against a concurrent start for the same lease
    mkdirSync(p.dir, { mode: 0o700 })
  } catch (err) {
    throw conflict(`failed to create the DHCP state dir "${p.dir}": ${(err as Error).message}`, 'another plumb is starting a client for this interface')
  }

  const input = argvInput(opts)
  const argv = nsenterArgv(nsenter, client, input)
  const meta: LeaseMeta = {
    stateKey: opts.stateKey,
    ifname: opts.ifname,
    guestLabel: opts.guestLabel,
    nsPath: opts.nsPath,
    netnsIno: ns.ino,
    ...(ns.cookie === undefined ? {} : { netnsCookie: ns.cookie }),
    client: client.kind,
    argv,
    nsenter,
    watch,
    ...(mnt ? { resolv: { mntNsPath: mnt.path } } : {}),
    startedAt: new Date().toISOString(),
  }
  let logFd: number | undefined
  try {
    writeFileSync(p.meta, JSON.stringify(meta, null, 2) + '\n')
    writeFileSync(p.hook, hookScript({ stateDir: p.dir, ifname: opts.ifname, client: client.kind, ...(mnt ? { mntNsPath: mnt.path, mntNsIno: mnt.ino } : {}) }), { mode: 0o700 })
    writeFileSync(p.supervisor, SUPERVISOR_SCRIPT, { mode: 0o700 })
    if (client.kind === 'dhclient') writeFileSync(p.dhclientConf, dhclientConf(opts.hostname))
    logFd = openSync(p.log, 'a+', 0o600)

    const sup = await spawnChild('/bin/sh', [p.supervisor, p.dir, String(watch.pid ?? ''), String(wpidIno ?? ''), watch.path ?? '', String(wpathIno ?? ''), ...argv], {
      // detached = setsid(): its own session, so it outlives plumb and no terminal signal reaches it
      detached: true,
      stdio: ['ignore', logFd, logFd],
      cwd: '/',
      env: { PATH: `/usr/sbin:/usr/bin:/sbin:/bin${process.env.PATH ? `:${process.env.PATH}` : ''}`, LANG: 'C' },
    })
    let spawnError: Error | undefined
    sup.on('error', (e) => (spawnError = e))
    sup.unref()
    // The supervisor writes it too, first thing: atomically here, so that a plumb killed
    // mid-write never leaves it empty (stopDhcp and gc find the supervisor by it).
    if (sup.pid) writeFileAtomic(p.supervisorPid, `${sup.pid}\n`)

    let supGone = false
    sup.on('exit', () => (supGone = true))
    const got = await until(() => supGone || spawnError !== undefined || readHookLease(p) !== undefined, timeoutSec * 1000)
    const h = readHookLease(p)
    if (h && !supGone) {
      return toLease(meta, h, p, sup.pid!, readPid(p.clientPid))
    }
    const why = tail(logFd)
    await stopDhcp({ stateKey: opts.stateKey, ifname: opts.ifname, release: false })
    if (!got) {
      throw new PlumbError('FAILED', `no DHCP offer on ${opts.ifname} within ${timeoutSec} s`, {
        hint: `is a DHCP server answering on the network ${opts.ifname} of ${opts.guestLabel} is attached to?${why ? ` (${client.kind}: ${why})` : ''}`,
      })
    }
    throw new PlumbError('FAILED', `failed to run DHCP client ${client.kind} on "${opts.ifname}" in ${opts.guestLabel}: ${spawnError?.message ?? (why || 'it exited')}`, {
      hint: `the command was: ${argv.join(' ')}`,
    })
  } catch (err) {
    if (!(err instanceof PlumbError)) await stopDhcp({ stateKey: opts.stateKey, ifname: opts.ifname, release: false }).catch(() => undefined)
    throw err
  } finally {
    if (logFd !== undefined) closeSync(logFd)
  }
}

function signal(pid: number | undefined, dir: string, sig: NodeJS.Signals): boolean {
  if (!isOurs(pid, dir)) return false
  try {
    process.kill(pid!, sig)
    return true
  } catch {
    return false
  }
}

/** TERM a process of ours, give it `graceMs`, then KILL; resolves when it is gone. */
async function terminate(pid: number | undefined, dir: string, graceMs: number): Promise<void> {
  if (!signal(pid, dir, 'SIGTERM')) return
  if (await until(() => !isOurs(pid, dir), graceMs)) return
  signal(pid, dir, 'SIGKILL')
  await until(() => !isOurs(pid, dir), 1000)
}

function countLines(path: string, re: RegExp): number {
  return readFileSyncSafe(path).split('\n').filter((l) => re.test(l)).length
}

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/** The `ip -batch` lines that undo what the hook applied (routes first, the address last). */
export function undoLines(applied: string, ifname: string): string[] {
  const lines = applied.split('\n').map((l) => l.trim()).filter(Boolean)
  const routes = lines.filter((l) => l.startsWith('route ')).map((l) => `route del ${l.slice(6)} dev ${ifname}`)
  const addrs = lines.filter((l) => l.startsWith('addr ')).map((l) => `addr del ${l.slice(5)} dev ${ifname}`)
  return [...routes, ...addrs]
}

async function releaseClient(p: StatePaths, meta: LeaseMeta, clientPid: number | undefined, steps: string[]): Promise<boolean> {
  if (meta.client === 'udhcpc' || meta.client === 'dhcpcd') {
    // udhcpc: SIGUSR2 sends DHCPRELEASE and runs the hook's deconfig; dhcpcd releases (and
    // exits) on SIGHUP. Wait, bounded, for the hook to log the deconfig/RELEASE.
    const before = countLines(p.events, /\s(deconfig|RELEASE)\b/)
    if (!signal(clientPid, p.dir, meta.client === 'udhcpc' ? 'SIGUSR2' : 'SIGHUP')) return false
    const ok = await until(() => countLines(p.events, /\s(deconfig|RELEASE)\b/) > before, 3000)
    steps.push(`${meta.client} (pid ${clientPid}) sent DHCPRELEASE`)
    return ok
  }
  // dhclient -r: stop the running one ourselves first (its own kill-and-wait sleeps a whole
  // second), then run -r with the same lease file in the guest's netns to send the release
  await terminate(clientPid, p.dir, 2000)
  rmSync(p.clientPidFile, { force: true })
  const argv = meta.argv.slice()
  const i = argv.indexOf('-d')
  if (i >= 0) argv.splice(i, 1, '-r')
  const release = () => run(argv[0]!, argv.slice(1), { extendEnv: false })
  let r = await release()
  // One more try when it did not get through (seen on a loaded machine): a release is cheap and
  // a lease left on the server holds its address until it expires.
  if (r.exitCode !== 0) r = await release()
  steps.push(`dhclient -r sent DHCPRELEASE${r.exitCode === 0 ? '' : ` (exit ${r.exitCode ?? r.signal}: ${String(r.stderr).trim().split('\n').pop()})`}`)
  return r.exitCode === 0
}

/**
 * Stop a lease's client: optionally release it, stop supervisor and client by their recorded
 * pids, remove what the hook applied (if it has not itself), remove the state dir. Idempotent.
 */
export async function stopDhcp(opts: StopDhcpOptions): Promise<StopResult> {
  const p = statePaths(opts.stateKey, opts.ifname)
  const steps: string[] = []
  if (!existsSync(p.dir)) return { stopped: false, released: false, steps }
  const meta = readMeta(p)
  if (opts.onlyInNetns && meta && !opts.onlyInNetns.some((n) => startedIn(meta, n))) return { stopped: false, released: false, steps }
  const supPid = readPid(p.supervisorPid)
  const clientPid = readPid(p.clientPid)

  // tell the supervisor we are in charge, then stop it: it must not clean the dir under us
  try {
    writeFileSync(p.stopping, '')
  } catch {
    // the lease dir went already: nothing to mark
  }
  await terminate(supPid, p.dir, 2000)

  let released = false
  // the netns path is only trusted while it still names the netns the client was started in
  const sameNetns = meta !== undefined && stillItsNetns(meta)
  if (opts.release && meta && sameNetns && isOurs(clientPid, p.dir)) {
    released = await releaseClient(p, meta, clientPid, steps).catch(() => false)
  }
  await terminate(clientPid, p.dir, 2000)
  steps.push(`stopped ${meta?.client ?? 'the DHCP client'}${clientPid ? ` (pid ${clientPid})` : ''}`)

  const applied = readFileSyncSafe(p.applied)
  if (meta && sameNetns && applied.trim()) {
    const lines = undoLines(applied, meta.ifname)
    // -force: keep going past a route the kernel already dropped with the address
    await run(meta.nsenter, [`--net=${meta.nsPath}`, 'ip', '-force', '-batch', '-'], { input: lines.join('\n') + '\n', timeout: 5000, extendEnv: false }).catch(() => undefined)
    steps.push(...lines.map((l) => `ip ${l}`))
  }
  rmSync(p.dir, { recursive: true, force: true })
  return { stopped: true, released, steps }
}

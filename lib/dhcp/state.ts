// The per-lease state dir (/run/plumb/dhcp/<guest-key>-<ifname>/): its layout, and reading it back.

import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { dhcpStateDir } from '../config.js'
import { encodeKey } from '../paths.js'

export function stateDirName(stateKey: string, ifname: string): string {
  return `${encodeKey(stateKey)}-${encodeKey(ifname)}`
}

export interface StatePaths {
  dir: string
  meta: string
  hook: string
  supervisor: string
  supervisorPid: string
  clientPid: string
  lease: string
  applied: string
  events: string
  log: string
  stopping: string
  dhclientConf: string
  leaseFile: string
  /** the client's own pidfile (dhclient -pf): dhclient -r reads it */
  clientPidFile: string
}

export function statePaths(stateKey: string, ifname: string): StatePaths {
  const dir = join(dhcpStateDir(), stateDirName(stateKey, ifname))
  const f = (n: string) => join(dir, n)
  return {
    dir,
    meta: f('meta.json'),
    hook: f('hook'),
    supervisor: f('supervise.sh'),
    supervisorPid: f('supervisor.pid'),
    clientPid: f('client.pid'),
    lease: f('lease.json'),
    applied: f('applied'),
    events: f('events'),
    log: f('log'),
    stopping: f('stopping'),
    dhclientConf: f('dhclient.conf'),
    leaseFile: f('dhclient.leases'),
    clientPidFile: f('dhclient.pid'),
  }
}

/** What startDhcp records before starting anything: enough for stopDhcp, ls and gc later. */
export interface LeaseMeta {
  stateKey: string
  ifname: string
  guestLabel: string
  nsPath: string
  /** the netns inode at start: nsPath is only trusted while it still names this one */
  netnsIno: number
  /** and its cookie: the kernel gives a freed netns's inode to the next one at once, never its cookie */
  netnsCookie?: number
  client: 'udhcpc' | 'dhclient' | 'dhcpcd'
  argv: string[]
  nsenter: string
  watch: { pid?: number; path?: string }
  resolv?: { mntNsPath: string }
  startedAt: string
}

/** A lease's client was started in netns `ns`: the same inode, and the same cookie where both are known (a freed netns's inode goes to the next one made, its cookie never). */
export function startedIn(meta: { netnsIno?: number; netnsCookie?: number }, ns: { ino: number; cookie?: number }): boolean {
  return meta.netnsIno === ns.ino && (meta.netnsCookie === undefined || ns.cookie === undefined || meta.netnsCookie === ns.cookie)
}

/** The hook's report (lease.json): what the server gave. */
export interface HookLease {
  event: string
  address: string
  prefix: number
  router: string
  dns: string[]
  server: string
  leaseTime: number
  /** epoch seconds */
  obtainedAt: number
}

export interface Lease {
  ifname: string
  address: string
  prefix: number
  router?: string
  dns: string[]
  server?: string
  /** seconds */
  leaseTime: number
  obtainedAt: string
  expiresAt: string
  client: string
  /** the supervisor's pid: stopping it stops the client (stopDhcp does both, by pid) */
  pid: number
  /** the DHCP client's own pid (a member of the guest's netns) */
  clientPid?: number
  stateDir: string
}

/** A state dir as `ls`/`gc`/`detach` see it; lease fields are absent until the hook reported one. */
export interface LeaseState extends Partial<Omit<Lease, 'ifname' | 'pid' | 'stateDir' | 'dns'>> {
  stateKey: string
  ifname: string
  guestLabel?: string
  nsPath?: string
  stateDir: string
  dns: string[]
  /** supervisor pid (0 when unknown) */
  pid: number
  /** supervisor and client both running (false: a leftover for gc) */
  alive: boolean
  /** the inode of the netns the client was started in (a restarted container's new netns has another) */
  netnsIno?: number
  netnsCookie?: number
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T
  } catch {
    return undefined
  }
}

export function readMeta(p: StatePaths): LeaseMeta | undefined {
  return readJson<LeaseMeta>(p.meta)
}

export function readHookLease(p: StatePaths): HookLease | undefined {
  const l = readJson<HookLease>(p.lease)
  return l && typeof l.address === 'string' && l.address ? l : undefined
}

export function readPid(path: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10)
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}

/**
 * Is `pid` a live process started for this state dir? Its argv must mention the dir (the
 * supervisor gets it as $1, the clients get the hook path), so a recycled pid is never
 * mistaken for ours and never signalled. A zombie has an empty cmdline: not alive.
 */
export function isOurs(pid: number | undefined, dir: string): boolean {
  if (!pid) return false
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a === dir || a.startsWith(`${dir}/`))
  } catch {
    return false
  }
}

export function toLease(meta: Pick<LeaseMeta, 'ifname' | 'client'>, h: HookLease, p: StatePaths, pid: number, clientPid?: number): Lease {
  const obtained = new Date(h.obtainedAt * 1000)
  return {
    ifname: meta.ifname,
    address: h.address,
    prefix: h.prefix,
    ...(h.router ? { router: h.router } : {}),
    dns: h.dns ?? [],
    ...(h.server ? { server: h.server } : {}),
    leaseTime: h.leaseTime,
    obtainedAt: obtained.toISOString(),
    expiresAt: new Date(obtained.getTime() + h.leaseTime * 1000).toISOString(),
    client: meta.client,
    pid,
    ...(clientPid ? { clientPid } : {}),
    stateDir: p.dir,
  }
}

function decodeKey(s: string): string {
  return Buffer.from(s.replace(/%([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))), 'latin1').toString('utf8')
}

/** Every lease dir plumb has, with its lease (if one was reported) and whether it still runs. */
export async function listLeases(): Promise<LeaseState[]> {
  let names: string[]
  try {
    names = readdirSync(dhcpStateDir(), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)
  } catch {
    return []
  }
  const out: LeaseState[] = []
  for (const name of names.sort()) {
    const sep = name.indexOf('-')
    if (sep <= 0) continue
    const stateKey0 = decodeKey(name.slice(0, sep))
    const ifname0 = decodeKey(name.slice(sep + 1))
    const p = statePaths(stateKey0, ifname0)
    const meta = readMeta(p)
    const pid = readPid(p.supervisorPid)
    const clientPid = readPid(p.clientPid)
    const alive = isOurs(pid, p.dir) && isOurs(clientPid, p.dir)
    const h = readHookLease(p)
    const base: LeaseState = {
      stateKey: meta?.stateKey ?? stateKey0,
      ifname: meta?.ifname ?? ifname0,
      ...(meta ? { guestLabel: meta.guestLabel, nsPath: meta.nsPath, client: meta.client, netnsIno: meta.netnsIno, ...(meta.netnsCookie === undefined ? {} : { netnsCookie: meta.netnsCookie }) } : {}),
      stateDir: p.dir,
      dns: [],
      pid: pid ?? 0,
      ...(clientPid ? { clientPid } : {}),
      alive,
    }
    if (h && meta) {
      const { ifname: _i, pid: _p, stateDir: _s, ...rest } = toLease(meta, h, p, pid ?? 0, clientPid)
      Object.assign(base, rest)
    }
    out.push(base)
  }
  return out
}

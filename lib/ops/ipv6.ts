// IPv6 on the interfaces plumb configures: turned on per interface when (and only when) an IPv6
// address is asked for, and, where plumb found it off on an interface that was already there,
// remembered so that `set-ip --del` of the interface's last IPv6 address turns it off again.
//
// Docker starts containers with net.ipv6.conf.all/default.disable_ipv6=1 in their netns when the
// daemon has no IPv6; a new interface inherits `default`, and the kernel then refuses every IPv6
// address on it with EACCES ("IPv6 is disabled on this device"). Only the interface's own switch
// is flipped, never all/default: the guest's other interfaces stay as the engine set them. There
// is no netlink attribute for it (IFLA_INET6_CONF is read-only): it is the sysctl file, written
// from inside the guest's netns.

// Sync fs: the records are a few bytes, and node:fs/promises would cost every CLI start-up.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PlumbError } from '../errors.js'
import type { NetHandle } from '../kernel/types.js'
import type { Netns } from '../guest/index.js'
import { RUN_DIR } from '../paths.js'
import { inGuest } from './context.js'
import type { BatchStep, Tx } from './tx.js'

const disableKey = (ifname: string): string => `ipv6/conf/${ifname}/disable_ipv6`

/** The dry-run line of setting the switch. */
const sysctlLine = (netns: Netns, ifname: string, value: 0 | 1): string => inGuest(netns, `sysctl -qw net.ipv6.conf.${ifname}.disable_ipv6=${value}`)

/** Write the switch; a kernel booted with ipv6.disable=1 has no /proc/sys/net/ipv6 at all. */
async function setDisabled(guestNs: NetHandle, ifname: string, value: 0 | 1): Promise<void> {
  try {
    await guestNs.setSysctl(disableKey(ifname), String(value))
  } catch (err) {
    if (!existsSync('/proc/sys/net/ipv6')) {
      throw new PlumbError('UNSUPPORTED', `failed to turn on IPv6 on "${ifname}" in ${guestNs.label}: this kernel has IPv6 turned off (no /proc/sys/net/ipv6)`, {
        hint: 'boot without ipv6.disable=1, or give IPv4 addresses only',
        cause: err,
      })
    }
    throw err
  }
}

/**
 * The step that turns IPv6 on before an IPv6 address goes on `ifname`, for applyGuestConfig's
 * batch: setSysctl writes the file before its promise settles, so the address that follows in the
 * batch finds IPv6 on. `restore`: the interface was there before and plumb found IPv6 off, so the
 * rollback turns it off again; otherwise the link is this op's own and its deletion is the undo.
 */
export function enableIpv6Step(netns: Netns, guestNs: NetHandle, ifname: string, restore: boolean): BatchStep<unknown> {
  return {
    line: sysctlLine(netns, ifname, 0),
    run: () => setDisabled(guestNs, ifname, 0),
    ...(restore ? { undo: { line: sysctlLine(netns, ifname, 1), run: () => setDisabled(guestNs, ifname, 1) } } : {}),
  }
}

/** Whether IPv6 is off on an existing interface (set-ip reads this before it adds an IPv6 address). */
export async function ipv6Disabled(guestNs: NetHandle, ifname: string): Promise<boolean> {
  return (await guestNs.getSysctl(disableKey(ifname))) === '1'
}

// ---- the record of what set-ip found ----------------------------------------------------------
//
// An interface plumb did not make carries no mark of plumb's (and must not get one: marks say
// what plumb owns), so what set-ip found is kept where plumb keeps host-wide state, one small
// file per interface: /run/plumb/ipv6/<netns inode>-<ifindex>.json. The netns inode and the
// ifindex name that interface and nothing else while it lives; a record whose interface or netns
// is gone is never acted on, and gc removes those of guests that are gone. tmpfs: a reboot,
// which takes every netns with it, takes the records too.

export const IPV6_RECORD_DIR = join(RUN_DIR, 'ipv6')

export interface Ipv6Record {
  /** the guest's label when it was written (for gc and for people reading the file) */
  guest: string
  netnsIno: number
  netnsDev: number
  ifindex: number
  ifname: string
  /** what plumb found: IPv6 was off (disable_ipv6=1) */
  disabledIpv6: true
}

const recordPath = (netnsIno: number, ifindex: number): string => join(IPV6_RECORD_DIR, `${netnsIno}-${ifindex}.json`)

async function writeRecord(rec: Ipv6Record): Promise<void> {
  mkdirSync(IPV6_RECORD_DIR, { recursive: true, mode: 0o755 })
  writeFileSync(recordPath(rec.netnsIno, rec.ifindex), `${JSON.stringify(rec)}\n`)
}

async function removeRecord(netnsIno: number, ifindex: number): Promise<void> {
  rmSync(recordPath(netnsIno, ifindex), { force: true })
}

/** The record of this interface (#ifindex, named ifname, in this netns), if set-ip left one. */
export async function readIpv6Record(netns: Netns, ifindex: number, ifname: string): Promise<Ipv6Record | undefined> {
  let rec: Ipv6Record
  try {
    rec = JSON.parse(readFileSync(recordPath(netns.ino, ifindex), 'utf8')) as Ipv6Record
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined
    throw new PlumbError('FAILED', `failed to read ${recordPath(netns.ino, ifindex)}: ${(err as Error).message}`, { cause: err })
  }
  return rec.netnsDev === netns.dev && rec.ifindex === ifindex && rec.ifname === ifname && rec.disabledIpv6 === true ? rec : undefined
}

/** set-ip found IPv6 off on an interface that was there before: remember it (undone on rollback). */
export async function rememberIpv6Off(tx: Tx, netns: Netns, ifindex: number, ifname: string): Promise<void> {
  const rec: Ipv6Record = { guest: netns.label, netnsIno: netns.ino, netnsDev: netns.dev, ifindex, ifname, disabledIpv6: true }
  await tx.step(`# remember that IPv6 was off on ${ifname} (${recordPath(netns.ino, ifindex)})`, () => writeRecord(rec), {
    line: `rm ${recordPath(netns.ino, ifindex)}`,
    run: () => removeRecord(netns.ino, ifindex),
  })
}

/** set-ip --del took the last IPv6 address off an interface where plumb had turned IPv6 on: turn it off again. */
export async function restoreIpv6Off(tx: Tx, netns: Netns, guestNs: NetHandle, rec: Ipv6Record): Promise<void> {
  await tx.step(sysctlLine(netns, rec.ifname, 1), () => setDisabled(guestNs, rec.ifname, 1), {
    line: sysctlLine(netns, rec.ifname, 0),
    run: () => setDisabled(guestNs, rec.ifname, 0),
  })
  await tx.step(`rm ${recordPath(rec.netnsIno, rec.ifindex)}`, () => removeRecord(rec.netnsIno, rec.ifindex), {
    line: `# remember that IPv6 was off on ${rec.ifname} (${recordPath(rec.netnsIno, rec.ifindex)})`,
    run: () => writeRecord(rec),
  })
}

/** Every record (gc); unreadable files are skipped, not guessed at. */
export async function listIpv6Records(): Promise<Array<Ipv6Record & { path: string }>> {
  let names: string[]
  try {
    names = readdirSync(IPV6_RECORD_DIR)
  } catch {
    return []
  }
  const out: Array<Ipv6Record & { path: string }> = []
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const path = join(IPV6_RECORD_DIR, name)
    try {
      out.push({ ...(JSON.parse(readFileSync(path, 'utf8')) as Ipv6Record), path })
    } catch {
      // being written right now, or not ours: left alone
    }
  }
  return out
}

/** gc: drop a record (its guest is gone). */
export const forgetIpv6Record = (rec: Ipv6Record): Promise<void> => removeRecord(rec.netnsIno, rec.ifindex)

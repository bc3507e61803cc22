// Loads the setns addon (native/setns.c) from the package root, wherever this code runs from.

import { join } from 'node:path'
import { PlumbError } from '../errors.js'
import { findPackageRoot } from '../paths.js'

export interface SetnsAddon {
  /** setns(fd, CLONE_NEWNET), fn(), setns(back): fn must be synchronous and must not await */
  withNetns<T>(fd: number, fn: () => T): T
  /** setns(fd, CLONE_NEWUTS), fn(), setns(back): /proc/sys/kernel/hostname inside fn is the target's */
  withUtsns<T>(fd: number, fn: () => T): T
  /** a fresh empty netns as an O_CLOEXEC fd (alive while the fd is open) */
  newNetns(): number
  /** setns(fd, CLONE_NEWNET) for good: the calling thread stays there (the build's training of real ops) */
  enterNetns(fd: number): void
  /** a netlink socket of `protocol` (NETLINK_ROUTE by default) in the calling thread's netns, bound,
   *  close-on-exec, with NETLINK_EXT_ACK and NETLINK_GET_STRICT_CHK on where the kernel has them */
  netlinkOpen(protocol?: number): { fd: number; port: number; extAck: boolean; strictChk: boolean }
  /** send one netlink request on fd, then read every datagram queued on it, without blocking (native/setns.c) */
  netlinkRequest(fd: number, data: Uint8Array | Uint8Array[]): Buffer[]
  /** flock(fd, op | LOCK_NB): true when taken, false when held elsewhere; op 1 shared, 2 exclusive, 8 unlock */
  flock(fd: number, op: 1 | 2 | 8): boolean
  /** `ethtool -K IFNAME tx on|off` (SIOCETHTOOL) on socket `fd`, in that socket's netns; the
   *  state read back (without `on`: only the read) */
  txChecksum(fd: number, ifname: string, on?: boolean): boolean
  /** the cookie of the netns of `fd` (SO_NETNS_COOKIE: never given to another netns, unlike its inode); undefined where the kernel has none */
  netnsCookie(fd: number): number | undefined
  /** a non-blocking NETLINK_ROUTE socket in the calling thread's netns hearing address changes
   *  there and in every netns with an id there, and netns ids given or taken back */
  addrWatchOpen(): number
  /** what the watch heard since the last drain, in order: [RTM_NEWADDR (20) | RTM_DELADDR (21),
   *  netns id (-1: the socket's own), family, ifindex, address bytes], or [RTM_DELNSID (89), the
   *  id taken back, 0, 0, <empty>]; from a link watch, [RTM_NEWLINK (16) | RTM_DELLINK (17), -1,
   *  the master's ifindex (0: none), ifindex, the link message's payload (none when deleted)];
   *  `reset` when some of it was lost (queue overflow) */
  addrWatchDrain(fd: number): { reset: boolean; events: Array<[number, number, number, number, Buffer]> }
  /** a non-blocking NETLINK_ROUTE socket in the calling thread's netns hearing its links' changes (only its own netns) */
  linkWatchOpen(): number
}

const ADDON = join('native', 'build', 'Release', 'plumb_setns.node')
const ADDON_FUNCTIONS: Array<keyof SetnsAddon> = ['withNetns', 'withUtsns', 'newNetns', 'enterNetns', 'netlinkOpen', 'netlinkRequest', 'flock', 'txChecksum', 'netnsCookie', 'addrWatchOpen', 'addrWatchDrain', 'linkWatchOpen']

let cached: SetnsAddon | undefined
let loadError: PlumbError | undefined

/** The addon, loaded once; throws UNSUPPORTED (with the fix) when it was never built. */
export function loadAddon(): SetnsAddon {
  if (cached) return cached
  if (loadError) throw loadError
  const root = findPackageRoot()
  const path = root === undefined ? undefined : join(root, ADDON)
  try {
    if (path === undefined) throw new Error('the plumb package root (package.json named "plumb") was not found above ' + import.meta.url)
    // what require() does for a .node file, without its resolution (stat, realpath: ~0.5 ms of a
    // cold run); the addon is cached here
    const mod = { exports: {} as SetnsAddon }
    process.dlopen(mod, path)
    const addon = mod.exports
    // a build left from an older plumb lacks what this one calls: say so now, not as a TypeError mid-op
    const missing = ADDON_FUNCTIONS.filter((f) => typeof addon[f] !== 'function')
    if (missing.length) throw new Error(`it was built for an older plumb: it lacks ${missing.join(', ')}`)
    cached = addon
    return cached
  } catch (err) {
    loadError = new PlumbError('UNSUPPORTED', `failed to load the setns addon${path ? ` "${path}"` : ''}: ${(err as Error).message}`, {
      hint: `build it: npm rebuild plumb (or: npx node-gyp rebuild --directory ${root ? join(root, 'native') : 'native'}; needs g++, make, python3)`,
      cause: err,
    })
    throw loadError
  }
}

/** Whether the addon can be loaded (doctor, tests). */
export function addonAvailable(): boolean {
  try {
    loadAddon()
    return true
  } catch {
    return false
  }
}

/** Run `fn` synchronously with the main thread inside the netns of `nsFd`. */
export function withNetns<T>(nsFd: number, fn: () => T): T {
  return loadAddon().withNetns(nsFd, fn)
}

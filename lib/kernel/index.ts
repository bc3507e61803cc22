// The kernel layer's entry points: netlink handles bound to a netns, netns fds, errno mapping.

import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { toPlumbError } from './errors.js'
import { NetlinkHandle } from './handle.js'
import { loadAddon } from './native.js'
import type { NetHandle } from './types.js'

export type * from './types.js'
export { NetlinkError, errnoName, errnoOf, isGone, parseNlmsgerr, toPlumbError } from './errors.js'
export type { ToPlumbErrorOptions } from './errors.js'
export { NetlinkHandle, ONE_QUEUE } from './handle.js'
export { addonAvailable, withNetns } from './native.js'

/** A handle on the process's own netns (the host, for a CLI run from the host). */
export function openHostHandle(): NetHandle {
  try {
    return NetlinkHandle.host('host')
  } catch (err) {
    throw toPlumbError(err, 'open a netlink socket')
  }
}

/** A handle whose socket lives in the netns of `nsFd` for life (Go's netlink.NewHandleAt).
 *  The handle keeps its own reference to the netns: the caller may close nsFd afterwards. */
export function openHandleIn(nsFd: number, label: string): NetHandle {
  return NetlinkHandle.inside(nsFd, label)
}

/** open(path, O_RDONLY|O_CLOEXEC): /proc/PID/ns/net, /run/netns/NAME, a SandboxKey. */
export function openNetnsFd(path: string): number {
  try {
    return openSync(path, 'r')
  } catch (err) {
    throw toPlumbError(err, `open network namespace "${path}"`)
  }
}

/** The cookie of the netns of `fd` (SO_NETNS_COOKIE): unlike its inode, never given to another netns. */
export function netnsCookie(fd: number): number | undefined {
  return loadAddon().netnsCookie(fd)
}

export function closeFd(fd: number): void {
  closeSync(fd)
}

/** A fresh, empty, anonymous netns as an fd; it disappears when the fd is closed. */
export function newNetnsFd(): number {
  try {
    return loadAddon().newNetns()
  } catch (err) {
    throw toPlumbError(err, 'create a network namespace')
  }
}

/** Whether this kernel has link type `kind` ('vlan', 'macvlan', ...): probed by a create in a
 *  throwaway netns, so nothing real is touched. False also when the probe cannot run (not root). */
export async function probeLinkKind(kind: string): Promise<boolean> {
  let fd: number
  try {
    fd = loadAddon().newNetns()
  } catch {
    return false
  }
  try {
    const h = NetlinkHandle.inside(fd, 'probe')
    try {
      return await h.probeKind(kind, 'probe0')
    } finally {
      h.close()
    }
  } catch {
    return false
  } finally {
    closeSync(fd)
  }
}

/** The hostname of the UTS namespace `utsFd` (uname's nodename there), read with the main thread inside it. */
export function getHostnameIn(utsFd: number): string {
  try {
    return loadAddon().withUtsns(utsFd, () => readFileSync('/proc/sys/kernel/hostname', 'utf8').trim())
  } catch (err) {
    throw toPlumbError(err, 'read the hostname of the guest')
  }
}

/** sethostname(2) inside the UTS namespace `utsFd` (written through /proc/sys/kernel/hostname, which is the thread's). */
export function setHostnameIn(utsFd: number, name: string): void {
  try {
    loadAddon().withUtsns(utsFd, () => writeFileSync('/proc/sys/kernel/hostname', name))
  } catch (err) {
    throw toPlumbError(err, `set the hostname of the guest to "${name}"`)
  }
}
export { nftGeneration } from './nftgen.js'

// Opening namespace files: an fd held for the op's life, checked to be a *network* namespace, and host detection.

import { closeSync, constants, fstatSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { PlumbError, usageError } from '../errors.js'
import { errnoOf, errorCodeOf } from '../kernel/errors.js'
import { netnsCookie } from '../kernel/index.js'

/** The inode the kernel gives the initial network namespace (PROC_NET_INIT_INO, fixed since Linux 3.8). */
export const INIT_NET_INO = 0xeffffff9

export interface NsId {
  dev: number
  ino: number
}

export interface OpenedNs extends NsId {
  fd: number
  path: string
}

let nsfsDevCache: number | undefined
let hostCache: NsId | undefined

/** st_dev shared by every nsfs inode (they all live on the one internal nsfs mount). */
export function nsfsDev(): number {
  nsfsDevCache ??= statSync('/proc/self/ns/net').dev
  return nsfsDevCache
}

/**
 * The netns at `path` now: its identity and its cookie (an inode is given again to a later netns,
 * a cookie never). None when the path cannot be opened, or is not a namespace file (any more: a
 * restarted container's old SandboxKey, unmounted, stays behind as an empty file).
 */
export function netnsAt(path: string): (NsId & { cookie?: number }) | undefined {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    const id = netnsIdOf(fd)
    return id.dev === nsfsDev() ? id : undefined
  } finally {
    closeSync(fd)
  }
}

/** The identity of the namespace `fd` is open on, with its cookie where the kernel has one (a netns). */
export function netnsIdOf(fd: number): NsId & { cookie?: number } {
  const st = fstatSync(fd)
  const cookie = st.dev === nsfsDev() ? netnsCookie(fd) : undefined
  return { dev: st.dev, ino: st.ino, ...(cookie === undefined ? {} : { cookie }) }
}

/**
 * The host's netns identity: plumb's own. Host ends, bridges and OVS ports are made where plumb
 * runs, so that is the host, also when plumb runs inside another netns acting as one
 * (`ip netns exec HOST plumb ...`: how the overlay tests build several hosts on one machine).
 */
export function hostNetnsId(): NsId {
  if (hostCache) return hostCache
  const st = statSync('/proc/self/ns/net')
  hostCache = { dev: st.dev, ino: st.ino }
  return hostCache
}

/** Inode of the host's network namespace (see hostNetnsId). */
export function hostNetnsIno(): number {
  return hostNetnsId().ino
}

/** The path to open for the host's netns (see hostNetnsId). */
export function hostNetnsPath(): string {
  return '/proc/self/ns/net'
}

/**
 * A netns a guest must not be without --allow-host: plumb's own (the host's), or the machine's
 * initial one (a --net=host container while plumb runs in another netns is still the machine).
 */
export function isHostNs(id: NsId): boolean {
  const host = hostNetnsId()
  if (id.dev === host.dev && id.ino === host.ino) return true
  return id.dev === nsfsDev() && id.ino === INIT_NET_INO
}

export interface OpenNsErrors {
  /** what is being opened, for messages: 'the network namespace of pid 12', 'container "web"' */
  what: string
  /** the error for a missing file (ENOENT, ESRCH, ENOTDIR) */
  notFound: () => PlumbError
}

/**
 * open(2) a namespace file O_RDONLY. O_NONBLOCK so that a FIFO given as a "path" cannot hang
 * us; it means nothing for nsfs inodes. Node opens every fd O_CLOEXEC.
 */
export function openNsFile(path: string, errs: OpenNsErrors): OpenedNs {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    const code = errnoOf(err)
    const kind = code && errorCodeOf(code)
    if (kind === 'NOT_FOUND') throw errs.notFound()
    if (kind === 'PERMISSION') {
      throw new PlumbError('PERMISSION', `failed to open ${errs.what} "${path}": permission denied`, {
        hint: 'run as root (plumb needs CAP_SYS_ADMIN and CAP_NET_ADMIN; opening another process\'s namespace also needs CAP_SYS_PTRACE)',
        cause: err,
      })
    }
    throw new PlumbError('FAILED', `failed to open ${errs.what} "${path}": ${(err as Error).message}`, { cause: err })
  }
  try {
    const st = fstatSync(fd)
    return { fd, path, dev: st.dev, ino: st.ino }
  } catch (err) {
    closeSync(fd)
    throw new PlumbError('FAILED', `failed to stat ${errs.what} "${path}": ${(err as Error).message}`, { cause: err })
  }
}

/**
 * The namespace type of an open nsfs fd ('net', 'mnt', ...), or undefined if we cannot tell.
 * Node has no ioctl(NS_GET_NSTYPE); instead: an fd opened through /proc/PID/ns/X reads back as
 * 'X:[ino]', and an fd on a bind mount (ip netns, Docker's SandboxKey) has a mountinfo line
 * whose root is 'X:[ino]'.
 */
export function nsTypeOf(ns: OpenedNs): string | undefined {
  try {
    const m = /^(\w+):\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${ns.fd}`))
    if (m && Number(m[2]) === ns.ino) return m[1]
  } catch {
    /* fall through to mountinfo */
  }
  try {
    const suffix = `:[${ns.ino}]`
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const root = line.split(' ')[3]
      if (root?.endsWith(suffix)) return root.slice(0, -suffix.length)
    }
  } catch {
    /* no /proc: cannot tell */
  }
  return undefined
}

/**
 * Throws USAGE (closing the fd) unless `ns` is a network namespace: an nsfs inode (same st_dev
 * as /proc/self/ns/net) whose type, where we can read it, is 'net'.
 */
const NET_ONLY_DIRS = ['/run/netns/', '/var/run/netns/', '/var/run/docker/netns/', '/run/docker/netns/']

export function assertNetNs(ns: OpenedNs, shownAs: string = ns.path): void {
  // `ip netns` and Docker bind-mount only network namespaces in their directories: there the
  // nsfs check suffices, and the type lookup (a read of /proc/self/mountinfo, ~0.4 ms, a third
  // of a library attach's own JavaScript time) is skipped.
  const type = ns.dev !== nsfsDev() ? 'not-nsfs' : NET_ONLY_DIRS.some((d) => ns.path.startsWith(d)) ? 'net' : nsTypeOf(ns)
  if (type === undefined || type === 'net') return
  closeQuietly(ns.fd)
  const detail = type === 'not-nsfs' ? '' : ` (it is a ${type} namespace)`
  throw usageError(
    `"${shownAs}" is not a network namespace file${detail}`,
    'give /proc/PID/ns/net, /run/netns/NAME or /var/run/docker/netns/ID; or name the guest as pid:N, netns:NAME or a container',
  )
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    /* already closed */
  }
}

// A guest's own /etc/hosts, /etc/hostname, /etc/resolv.conf and hostname, reached without
// ever touching the host's: a container or process through /proc/PID/root (the kernel walks
// that path in the process's mount namespace, so no helper process has to enter it: setns
// CLONE_NEWNS refuses a multithreaded caller like node), an `ip netns` through /etc/netns/NAME
// (what `ip netns exec` bind-mounts over /etc), the UTS hostname through the setns addon.

import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, statSync, writeSync } from 'node:fs'
import { PlumbError, conflict, notFound, usageError } from '../errors.js'
import { errnoOf, errorCodeOf } from '../kernel/errors.js'
import type { Netns } from './types.js'

export type EtcFile = 'hosts' | 'hostname' | 'resolv.conf'

export interface GuestEtc {
  /** 'mount': a process's mount namespace (containers, pid guests); 'netns': /etc/netns/NAME */
  kind: 'mount' | 'netns'
  /** the pid whose mount namespace is the guest's (kind 'mount') */
  pid?: number
  /** the ip netns name (kind 'netns') */
  netnsName?: string
  /** an fd on the guest's own UTS namespace; undefined when it shares the host's (or has none) */
  utsFd?: number
  /** where /etc/FILE of the guest is, as a path on the host; `exists` false: plumb would create it */
  locate(file: EtcFile): { path: string; exists: boolean }
  /** `cat > FILE` of the guest, as a shell line for --dry-run plans */
  writeLine(file: EtcFile, content: string): string
  close(): void
}

const MAX_LINKS = 16

function inode(path: string): { dev: number; ino: number } | undefined {
  try {
    const st = statSync(path)
    return { dev: st.dev, ino: st.ino }
  } catch {
    return undefined
  }
}

/** The host's own namespace of a type: pid 1's, or ours where pid 1's is off limits (as nsfile.ts does for net). */
function hostNs(type: 'mnt' | 'uts'): { dev: number; ino: number } | undefined {
  return inode(`/proc/1/ns/${type}`) ?? inode(`/proc/self/ns/${type}`)
}

/**
 * `rel` (an absolute path inside the guest) resolved under `root` one component at a time, every
 * symlink followed by hand inside `root`: an absolute link in the guest (/etc/resolv.conf ->
 * /run/...) must not be followed from the host's root, which would name the host's file.
 */
export function resolveUnder(root: string, rel: string): { path: string; exists: boolean } {
  let todo = rel.split('/').filter(Boolean)
  const done: string[] = []
  let links = 0
  while (todo.length > 0) {
    const part = todo.shift()!
    if (part === '.') continue
    if (part === '..') {
      done.pop()
      continue
    }
    const path = `${root}/${[...done, part].join('/')}`
    let st
    try {
      st = lstatSync(path)
    } catch (err) {
      const code = errnoOf(err)
      const missing = code !== undefined && errorCodeOf(code) === 'NOT_FOUND'
      if (missing && todo.length === 0) return { path, exists: false }
      if (missing) throw notFound(`the guest has no ${[...done, part].join('/')} (looking for ${rel})`)
      throw new PlumbError('FAILED', `failed to look at the guest's ${rel}: ${(err as Error).message}`, { cause: err })
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new PlumbError('FAILED', `too many symbolic links in the guest's ${rel}`)
      const target = readlinkSync(path)
      if (target.startsWith('/')) done.length = 0
      todo = [...target.split('/').filter(Boolean), ...todo]
      continue
    }
    done.push(part)
  }
  return { path: `${root}/${done.join('/')}`, exists: true }
}

/** A heredoc that writes `content` to `file` (the plans' spelling of a file write). */
function catInto(prefix: string, file: string, content: string): string {
  return `${prefix}cat > ${file} <<'EOF'\n${content}EOF`
}

/**
 * Open the guest's /etc for names. Refused: the host itself, a guest that shares the host's
 * mount namespace (its /etc is the host's: exit 4), and a bare netns file with no process or
 * ip netns name to say whose files they are (exit 2).
 */
export function openGuestEtc(netns: Netns): GuestEtc {
  if (netns.isHost) throw conflict(`${netns.label} is the host: plumb never edits the host's /etc files`, 'name a container, pid:N (with its own mount namespace) or netns:NAME')
  const netnsName = netns.ref.kind === 'netns' ? netns.ref.name : /^\/(var\/)?run\/netns\/([^/]+)$/.exec(netns.path)?.[2]
  if (netnsName !== undefined && netns.pid === undefined) {
    const dir = `/etc/netns/${netnsName}`
    return {
      kind: 'netns',
      netnsName,
      locate: (file) => {
        const path = `${dir}/${file}`
        let st
        try {
          st = lstatSync(path)
        } catch {
          return { path, exists: false }
        }
        if (st.isSymbolicLink() || !st.isFile()) throw conflict(`${path} is not a regular file: plumb edits only files it can rewrite in place`, 'replace it with a plain file, or leave this guest\'s names alone')
        return { path, exists: true }
      },
      writeLine: (file, content) => catInto('', `${dir}/${file}`, content),
      close: () => undefined,
    }
  }
  const pid = netns.pid
  if (pid === undefined) {
    throw usageError(`${netns.label} is a bare network namespace file: plumb cannot tell whose /etc files go with it`, 'name the guest as a container, pid:N or netns:NAME')
  }
  // The pid must still be in the netns we hold (a recycled pid would name another process's files).
  const net = inode(`/proc/${pid}/ns/net`)
  if (!net || net.ino !== netns.ino || net.dev !== netns.dev) throw notFound(`the process ${pid} of ${netns.label} is gone`, 'is the guest still running?')
  const mnt = inode(`/proc/${pid}/ns/mnt`)
  const hostMnt = hostNs('mnt')
  if (!mnt) throw notFound(`cannot open the mount namespace of ${netns.label} (pid ${pid})`, 'is the guest still running?')
  if (hostMnt && mnt.ino === hostMnt.ino && mnt.dev === hostMnt.dev) {
    throw conflict(`${netns.label} shares the host's mount namespace: its /etc files are the host's, which plumb never writes`, 'run the guest with a filesystem of its own (a container), or use an ip netns (netns:NAME), whose files are /etc/netns/NAME')
  }
  let utsFd: number | undefined
  const uts = inode(`/proc/${pid}/ns/uts`)
  const hostUts = hostNs('uts')
  if (uts && !(hostUts && uts.ino === hostUts.ino && uts.dev === hostUts.dev)) {
    try {
      utsFd = openSync(`/proc/${pid}/ns/uts`, constants.O_RDONLY)
      const st = fstatSync(utsFd)
      if (st.ino !== uts.ino) {
        closeSync(utsFd)
        utsFd = undefined
      }
    } catch {
      utsFd = undefined
    }
  }
  const root = `/proc/${pid}/root`
  return {
    kind: 'mount',
    pid,
    ...(utsFd !== undefined ? { utsFd } : {}),
    locate: (file) => resolveUnder(root, `/etc/${file}`),
    writeLine: (file, content) => catInto(`nsenter --mount=/proc/${pid}/ns/mnt `, `/etc/${file}`, content),
    close: () => {
      if (utsFd !== undefined) closeSync(utsFd)
      utsFd = undefined
    },
  }
}

/** Belt and braces: whatever path plumb resolved, it never writes a file that IS one of the host's /etc files. */
export function assertNotHostFile(path: string): void {
  const target = inode(path)
  if (!target) return
  for (const f of ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf']) {
    const h = inode(f)
    if (h && h.dev === target.dev && h.ino === target.ino) throw conflict(`${path} is the host's ${f}: plumb never writes the host's files`, 'is the guest sharing the host\'s filesystem?')
  }
}

/** The text of a guest file ('' when absent). */
export function readGuestFile(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw new PlumbError('FAILED', `failed to read ${path}: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * Rewrite a guest file in place (O_TRUNC on the same inode: Docker's /etc files are bind mounts
 * of single files, and a rename would leave the container looking at the old one), or create it.
 * A read-only file (a :ro bind mount, a read-only root) is a CONFLICT: the guest's set-up forbids it.
 */
export function writeGuestFile(path: string, content: string, create = false): void {
  assertNotHostFile(path)
  let fd: number
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW | (create ? constants.O_CREAT : 0), 0o644)
  } catch (err) {
    throw fileError(err, path)
  }
  try {
    writeSync(fd, content)
  } catch (err) {
    throw fileError(err, path)
  } finally {
    closeSync(fd)
  }
}

export function fileError(err: unknown, path: string): PlumbError {
  const code = errnoOf(err)
  const kind = code && errorCodeOf(code)
  // as root, a file it may not write is one the guest's mounts make read-only: not a matter of privilege
  if (code === 'EROFS' || kind === 'PERMISSION') {
    return conflict(`the guest's ${path.replace(/^\/proc\/\d+\/root/, '')} is not writable (${code}${code === 'EROFS' ? ': a read-only mount' : ''})`, 'the guest mounts it read-only: plumb cannot edit it; change how the guest is started')
  }
  if (kind === 'NOT_FOUND') return notFound(`no ${path}`)
  return new PlumbError('FAILED', `failed to write ${path}: ${(err as Error).message}`, { cause: err })
}

/** Refuse early (before any step) a file that cannot be written: access(2) reports EROFS for a read-only mount. */
export function checkWritable(path: string, exists: boolean): void {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/'
  try {
    if (exists) {
      // access(2) for root says yes to mode bits; EROFS is what it reports for a read-only mount
      const fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW)
      closeSync(fd)
    } else {
      statSync(dir)
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !exists) return // plumb creates the directory (ip netns)
    throw fileError(err, path)
  }
}

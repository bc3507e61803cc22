// Background processes a test starts (a DHCP server in a netns, a listener), stopped by their own pid in teardown.

import { execa } from 'execa'
import type { ResultPromise } from 'execa'
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { netnsAt } from '../../lib/guest/nsfile.js'
import type { Teardown } from './env.js'
import { nsArgv } from './netns.js'
import type { NsTarget } from './netns.js'

const BG_OPTS = { reject: false, stdin: 'ignore', forceKillAfterDelay: 2_000 } as const
export type BgProcess = ResultPromise<typeof BG_OPTS>

/** A long-running command in the host or a netns; SIGTERM (then SIGKILL) to its pid in teardown. */
export function spawnIn(t: Teardown, target: NsTarget, cmd: string, args: string[]): BgProcess {
  const [c, a] = nsArgv(target, cmd, args)
  // nsenter execs the command, so the pid we hold is the command's own.
  const proc = execa(c, a, BG_OPTS)
  t.teardown(async () => {
    if (proc.exitCode === null) proc.kill('SIGTERM')
    await proc
  })
  return proc
}

/** A live process: a zombie waiting for its reaper runs nothing and holds nothing, so it is dead. */
export function processAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z'
  } catch {
    return false
  }
}

/** A process's argv, NUL-separated words joined by spaces ('' once it is gone). */
export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return ''
  }
}

/** The other processes that have `path` open (from /proc/PID/fd): where another process stands, without a sleep. */
export function pidsWithOpen(path: string): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      if (readdirSync(`/proc/${pid}/fd`).some((fd) => readlinkSafe(`/proc/${pid}/fd/${fd}`) === path)) out.push(pid)
    } catch {
      // gone, or not ours to read
    }
  }
  return out
}

function readlinkSafe(p: string): string | undefined {
  try {
    return readlinkSync(p)
  } catch {
    return undefined
  }
}

/** The live children of `pid` (from each /proc/PID/stat's parent field). */
export function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, the last ")" ends it
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

/**
 * The journal entries (/run/plumb/journal) of killed plumbs still on disk that name one of these
 * netns (ip netns names, or paths: by inode), or, with `hostOp`, are that host-wide op's.
 */
export function journalEntriesFor(nsNames: string[], hostOp?: string): string[] {
  // by inode and cookie: an older netns (gone) may have had the same inode
  const ids = nsNames.map((n) => {
    const path = n.startsWith('/') ? n : `/run/netns/${n}`
    const id = netnsAt(path)
    if (!id) throw new Error(`no netns at ${path}`)
    return id
  })
  const names = (g: { ino: number; cookie?: number }): boolean => ids.some((id) => id.ino === g.ino && (g.cookie === undefined || g.cookie === id.cookie))
  let files: string[]
  try {
    files = readdirSync('/run/plumb/journal')
  } catch {
    return []
  }
  return files.filter((f) => {
    try {
      const e = JSON.parse(readFileSync(`/run/plumb/journal/${f}`, 'utf8')) as { pid: number; start: number; op: string; guests: Array<{ ino: number; cookie?: number }> }
      // a killed writer's (a live one's belongs to another test's op); a host-wide op's by its name, whatever guests it names
      return (e.guests.some(names) || e.op === hostOp) && startOf(e.pid) !== e.start
    } catch {
      return false
    }
  })
}

/** A process's start time (/proc/PID/stat field 22), undefined once it is gone. */
export function startOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  } catch {
    return undefined
  }
}

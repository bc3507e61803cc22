// Background processes a test starts (a DHCP server in a netns, a listener), stopped by their own pid in teardown.

import { execa } from 'execa'
import type { ResultPromise } from 'execa'
import { readFileSync } from 'node:fs'
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

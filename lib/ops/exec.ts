// exec: run a HOST program inside the guest's network namespace only (ip route/rule, tc, ping
// ...): it sees the host's files and binaries, not the guest's. With `mount` it enters the
// guest's mount and UTS namespaces too, and then runs the guest's own program on the guest's
// own files (`plumb exec --mount web -- cat /etc/hosts`). The netns fd we hold is handed to
// nsenter as fd 3 (`--net=/proc/self/fd/3`), so the command enters exactly the namespace we
// resolved, with no PID-reuse race.

import { closeSync, constants, openSync, statSync } from 'node:fs'
import { PlumbError, notFound, usageError } from '../errors.js'
import type { GuestRef } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import type { Netns } from '../guest/index.js'
import { toGuestRef } from './context.js'
import { cannotStart, spawnChild } from '../proc.js'

export interface ExecOptions {
  guest: string | GuestRef
  argv: string[]
  allowHost?: boolean
  /** enter the guest's mount (and UTS) namespace too: its own files and programs (an ip netns: `ip netns exec`) */
  mount?: boolean
  /** 'inherit' (the CLI) or 'pipe' (collect output, for scripts) */
  stdio?: 'inherit' | 'pipe'
}

export interface ExecResult {
  exitCode: number
  stdout: string
  stderr: string
}

interface Launch {
  file: string
  args: string[]
  fds: number[]
}

/** The mount and UTS namespaces of the guest's process, as fds (4, 5 for nsenter), checked to belong to the netns we hold. */
function mountLaunch(netns: Netns, argv: string[]): Launch {
  if (netns.ref.kind === 'netns' && netns.pid === undefined) {
    // What `ip netns exec` does is the guest's view: a private mount ns with /etc/netns/NAME over /etc.
    return { file: 'ip', args: ['netns', 'exec', netns.ref.name, ...argv], fds: [] }
  }
  const pid = netns.pid
  if (pid === undefined) throw usageError(`${netns.label} is a bare network namespace file: it has no mount namespace to enter`, 'name the guest as a container, pid:N or netns:NAME, or drop --mount')
  const fds: number[] = []
  try {
    for (const type of ['mnt', 'uts']) fds.push(openSync(`/proc/${pid}/ns/${type}`, constants.O_RDONLY))
    const net = statSync(`/proc/${pid}/ns/net`)
    if (net.ino !== netns.ino || net.dev !== netns.dev) throw notFound(`the process ${pid} of ${netns.label} is gone`, 'is the guest still running?')
  } catch (err) {
    for (const fd of fds) closeSync(fd)
    if (err instanceof PlumbError) throw err
    throw notFound(`cannot open the mount namespace of ${netns.label} (pid ${pid}): ${(err as Error).message}`, 'is the guest still running?')
  }
  return { file: 'nsenter', args: ['--net=/proc/self/fd/3', '--mount=/proc/self/fd/4', '--uts=/proc/self/fd/5', '--', ...argv], fds }
}

export async function execIn(opts: ExecOptions): Promise<ExecResult> {
  if (opts.argv.length === 0) throw usageError('exec needs a command', 'e.g. plumb exec web -- ip route')
  const netns = await resolveGuest(toGuestRef(opts.guest, { allowSelf: true }), { allowHost: opts.allowHost ?? false })
  let launch: Launch | undefined
  try {
    launch = opts.mount ? mountLaunch(netns, opts.argv) : { file: 'nsenter', args: ['--net=/proc/self/fd/3', '--', ...opts.argv], fds: [] }
    const pipe = opts.stdio === 'pipe'
    const child = await spawnChild(launch.file, launch.args, {
      stdio: [pipe ? 'ignore' : 'inherit', pipe ? 'pipe' : 'inherit', pipe ? 'pipe' : 'inherit', netns.fd, ...launch.fds],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const file = launch.file
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.on('error', (err) => reject(cannotStart(file, err, file === 'ip' ? 'apt-get install iproute2' : 'apt-get install util-linux')))
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)))
    })
    return { exitCode, stdout, stderr }
  } finally {
    for (const fd of launch?.fds ?? []) closeSync(fd)
    netns.close()
  }
}

// exec: run a command inside the guest's netns (ip route/rule, tc, ping ...). The netns fd we
// hold is handed to nsenter as fd 3 (`--net=/proc/self/fd/3`), so the command enters exactly
// the namespace we resolved, with no PID-reuse race.

import { PlumbError, usageError } from '../errors.js'
import type { GuestRef } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import { toGuestRef } from './context.js'
import { spawnChild } from '../proc.js'

export interface ExecOptions {
  guest: string | GuestRef
  argv: string[]
  allowHost?: boolean
  /** 'inherit' (the CLI) or 'pipe' (collect output, for scripts) */
  stdio?: 'inherit' | 'pipe'
}

export interface ExecResult {
  exitCode: number
  stdout: string
  stderr: string
}

export async function execIn(opts: ExecOptions): Promise<ExecResult> {
  if (opts.argv.length === 0) throw usageError('exec needs a command', 'e.g. plumb exec web -- ip route')
  const netns = await resolveGuest(toGuestRef(opts.guest, { allowSelf: true }), { allowHost: opts.allowHost ?? false })
  try {
    const pipe = opts.stdio === 'pipe'
    const child = await spawnChild('nsenter', ['--net=/proc/self/fd/3', '--', ...opts.argv], {
      stdio: [pipe ? 'ignore' : 'inherit', pipe ? 'pipe' : 'inherit', pipe ? 'pipe' : 'inherit', netns.fd],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.on('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new PlumbError('UNSUPPORTED', 'nsenter is not installed', { hint: 'apt-get install util-linux' }) : err),
      )
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)))
    })
    return { exitCode, stdout, stderr }
  } finally {
    netns.close()
  }
}

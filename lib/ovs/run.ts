// Running ovs-vsctl (through lib/proc) and turning its failures into PlumbErrors with a hint.

import { ovsdbSocket } from '../config.js'
import { PlumbError } from '../errors.js'
import type { ErrorCode } from '../errors.js'
import { VSCTL_TIMEOUT_S } from './argv.js'
import { run } from '../proc.js'
import type { RunResult } from '../proc.js'

/** What a call is about, for `failed to <verb> <object> "<name>": <cause>`. */
export interface CallContext {
  verb: string
  object: string
  name: string
}

interface VsctlResult {
  exitCode: number
  stdout: string
  stderr: string
}

const INSTALL_HINT = 'install the Debian package openvswitch-switch (apt-get install openvswitch-switch)'
export const START_HINT = 'start it: /usr/share/openvswitch/scripts/ovs-ctl start'

/** `failed to <verb> <object> "<name>"`: the head of every error message of lib/ovs. */
export const describeCall = (c: CallContext): string => `failed to ${c.verb} ${c.object} "${c.name}"`

/** ovs-vsctl prefixes every message with "ovs-vsctl: "; keep the text, drop the noise. */
export function cleanStderr(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.replace(/^ovs-vsctl: /, '').trim())
    .filter((l) => l !== '' && !l.startsWith('The default log directory is'))
    .join('; ')
}

/** The error for a failed call, from its exit status and stderr. */
export function vsctlError(c: CallContext, res: { exitCode?: number; signal?: string; stderr: string }, extra?: { cause?: unknown }): PlumbError {
  const text = cleanStderr(res.stderr)
  const opts = extra?.cause !== undefined ? { cause: extra.cause } : {}
  if (/database connection failed|db\.sock.*(No such file|Connection refused)/i.test(text)) {
    return new PlumbError('UNSUPPORTED', `${describeCall(c)}: Open vSwitch is not running (${text})`, { ...opts, hint: START_HINT })
  }
  // --timeout makes ovs-vsctl kill itself with SIGALRM: ovsdb or ovs-vswitchd does not answer.
  if (res.signal === 'SIGALRM' || /timeout after \d+ seconds/.test(text)) {
    return new PlumbError('UNSUPPORTED', `${describeCall(c)}: ovs-vsctl timed out after ${VSCTL_TIMEOUT_S} s (is ovs-vswitchd running?)`, { ...opts, hint: START_HINT })
  }
  let code: ErrorCode = 'FAILED'
  let hint: string | undefined
  if (/permission denied|operation not permitted/i.test(text)) {
    code = 'PERMISSION'
    hint = 'run as root (ovsdb and ovs-vswitchd sockets are root-only)'
  } else if (/^no bridge named|no row .* in table|does not have a port/m.test(text.replace(/; /g, '\n'))) {
    code = 'NOT_FOUND'
  } else if (/already exists|is actually attached to bridge/.test(text)) {
    code = 'CONFLICT'
  }
  const cause = text || (res.signal ? `killed by ${res.signal}` : `exit status ${String(res.exitCode)}`)
  return new PlumbError(code, `${describeCall(c)}: ${cause}`, { ...opts, ...(hint ? { hint } : {}) })
}

/**
 * Run `ovs-vsctl --db=unix:SOCKET --timeout=5 ARGV`, on the database the OVSDB client talks to.
 * Exit codes in `okExit` (default [0]) return; anything else throws a PlumbError. A missing
 * binary is UNSUPPORTED (exit 5) naming the package.
 * Note a zero exit is not success for add-br: callers read back what happened.
 */
export async function runVsctl(argv: string[], c: CallContext, opts: { okExit?: number[]; childOf?: string } = {}): Promise<VsctlResult> {
  let res: RunResult
  try {
    // A backstop over ovs-vsctl's own --timeout, should it hang before arming its alarm.
    res = await run('ovs-vsctl', [`--db=unix:${ovsdbSocket()}`, `--timeout=${VSCTL_TIMEOUT_S}`, ...argv], { timeout: (VSCTL_TIMEOUT_S + 5) * 1000, env: { LC_ALL: 'C' }, ...(opts.childOf !== undefined ? { childOf: opts.childOf } : {}) })
  } catch (err) {
    throw new PlumbError('UNSUPPORTED', `${describeCall(c)}: ovs-vsctl not found or not executable (Open vSwitch is not installed)`, { hint: INSTALL_HINT, cause: err })
  }
  const { stdout, stderr } = res
  if (res.timedOut) {
    return Promise.reject(vsctlError(c, { signal: 'SIGALRM', stderr }, { cause: res }))
  }
  const exitCode = res.exitCode ?? -1
  if (res.signal || !(opts.okExit ?? [0]).includes(exitCode)) {
    throw vsctlError(c, { exitCode, ...(res.signal ? { signal: res.signal } : {}), stderr })
  }
  return { exitCode, stdout, stderr }
}

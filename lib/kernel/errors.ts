// Kernel errors: NetlinkError (errno + the kernel's extended-ack text) and the ONE mapping
// from errno to plumb's error codes / exit codes, which every errno plumb meets goes through
// (netlink, the setns addon, fs, and connecting to ovsdb's or an engine's socket).

import { constants } from 'node:os'
import type { ErrorCode } from '../errors.js'
import { PlumbError } from '../errors.js'

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]))
// EOPNOTSUPP and ENOTSUP share 95 on Linux; the kernel means the former
ERRNO_NAMES.set(95, 'EOPNOTSUPP')
ERRNO_NAMES.set(35, 'EDEADLK')
ERRNO_NAMES.set(11, 'EAGAIN')

/** 'EEXIST' for 17; 'E<n>' for numbers the platform doesn't name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`
}

/** The classic strerror texts for the errnos this layer meets (node 20 has no
 *  util.getSystemErrorMessage); the kernel's extack text is preferred when present. */
const DESCRIPTIONS: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ENOSPC: 'No space left on device',
  ERANGE: 'Numerical result out of range',
  EMSGSIZE: 'Message too long',
  EPROTONOSUPPORT: 'Protocol not supported',
  EOPNOTSUPP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENETDOWN: 'Network is down',
  ENETUNREACH: 'Network is unreachable',
  ENOBUFS: 'No buffer space available',
  ENOTCONN: 'Transport endpoint is not connected',
  ETIMEDOUT: 'Connection timed out',
  ECONNREFUSED: 'Connection refused',
  ENOTSOCK: 'Socket operation on non-socket',
  EHOSTUNREACH: 'No route to host',
  ENOTSUP: 'Operation not supported',
  ENXIO: 'No such device or address',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EROFS: 'Read-only file system',
}

export function describeErrno(code: string): string {
  return DESCRIPTIONS[code] ?? code
}

export interface NetlinkErrorOptions {
  extack?: string
  /** link kind the failed request asked for (for "the kernel has no X link type") */
  kind?: string
  /** whether the socket had NETLINK_EXT_ACK on (so a missing extack means "none given") */
  extackEnabled?: boolean
  cause?: unknown
}

/** A request the kernel (or the socket) rejected: errno, its name, and the extended ack. */
export class NetlinkError extends Error {
  /** positive errno, e.g. 17 */
  readonly errno: number
  /** errno name, e.g. 'EEXIST' */
  readonly code: string
  /** the kernel's NLMSGERR_ATTR_MSG, e.g. 'ipv4: Address already assigned' */
  readonly extack?: string
  /** what was being done, e.g. 'RTM_NEWADDR' or 'setns' */
  readonly op: string
  readonly kind?: string
  readonly extackEnabled: boolean

  constructor(errno: number, op: string, opts: NetlinkErrorOptions = {}) {
    const code = errnoName(errno)
    super(`${op}: ${code}: ${opts.extack || describeErrno(code)}`, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'NetlinkError'
    this.errno = Math.abs(errno)
    this.code = code
    this.op = op
    if (opts.extack) this.extack = opts.extack
    if (opts.kind) this.kind = opts.kind
    this.extackEnabled = opts.extackEnabled ?? false
  }

  /** 'EEXIST: ipv4: Address already assigned' (no op), for user-facing messages */
  get detail(): string {
    return `${this.code}: ${this.extack || describeErrno(this.code)}`
  }
}

/** The kernel modules behind link kinds, for "the kernel has no X link type (module)". */
const KIND_MODULES: Record<string, string> = {
  vlan: '8021q',
  ipvlan: 'ipvlan',
  macvlan: 'macvlan',
  macvtap: 'macvtap',
  dummy: 'dummy',
  bond: 'bonding',
  openvswitch: 'openvswitch',
  vxlan: 'vxlan',
  veth: 'veth',
  bridge: 'bridge',
  vrf: 'vrf',
  wireguard: 'wireguard',
}

/** The hint for a kind the kernel lacks. */
export function missingKindHint(kind: string): string {
  const mod = KIND_MODULES[kind] ?? kind
  return `load it (modprobe ${mod}) or use a kernel built with it; \`plumb doctor\` lists what this kernel supports`
}

export interface ToPlumbErrorOptions {
  /** per-call remapping where an errno means something specific, e.g. EADDRNOTAVAIL on a
   *  delete means "not there" (NOT_FOUND), not a bad value */
  overrides?: Partial<Record<string, ErrorCode>>
  hint?: string
}

const NOT_FOUND = new Set(['ENODEV', 'ENOENT', 'ESRCH', 'ENXIO', 'ENOTDIR'])
const BAD_VALUE = new Set(['ERANGE', 'EINVAL', 'EADDRNOTAVAIL', 'ENETUNREACH', 'EMSGSIZE', 'EAFNOSUPPORT'])

export const PERMISSION_HINT = 'plumb needs CAP_NET_ADMIN and CAP_SYS_ADMIN: run it as root (sudo)'

/** errno name of anything thrown: NetlinkError, the addon's, fs's and net's errors ('EINVAL' in .code). */
export function errnoOf(err: unknown): string | undefined {
  if (err instanceof NetlinkError) return err.code
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined
}

/** The error code (and so the exit code) an errno means: the table. */
export function errorCodeOf(errno: string): ErrorCode {
  if (errno === 'EEXIST') return 'CONFLICT'
  if (NOT_FOUND.has(errno)) return 'NOT_FOUND'
  if (errno === 'EPERM' || errno === 'EACCES') return 'PERMISSION'
  if (BAD_VALUE.has(errno)) return 'USAGE'
  return 'FAILED'
}

/** connect(2) to a unix socket found nobody serving it: no such file, not a socket, or refused. */
export function isNoServer(errno: string | undefined): boolean {
  return errno === 'ENOENT' || errno === 'ECONNREFUSED' || errno === 'ENOTSOCK' || errno === 'ENOTDIR'
}

/** What undo steps tolerate: the thing is gone already (a NOT_FOUND PlumbError, or such an errno; an address no longer there). */
export function isGone(err: unknown): boolean {
  if (err instanceof PlumbError) return err.code === 'NOT_FOUND'
  const errno = errnoOf(err)
  return errno !== undefined && (errorCodeOf(errno) === 'NOT_FOUND' || errno === 'EADDRNOTAVAIL')
}

/**
 * The kernel lacks the link kind a create asked for: it says "Unknown device type" (other
 * EOPNOTSUPPs of a create, e.g. a master that is not a bridge, come without that text). Only a
 * socket without extended acks leaves us guessing, and then the kind is the likely culprit.
 */
export function isMissingKind(err: NetlinkError): boolean {
  return err.code === 'EOPNOTSUPP' && (err.extack !== undefined ? /unknown device type/i.test(err.extack) : !err.extackEnabled)
}

/**
 * The one place errno becomes an exit code. `what` completes "failed to ...", e.g.
 * `add address 198.18.0.2/24 to "eth1"`; the message ends with the errno and the kernel's text:
 * `failed to add address 198.18.0.2/24 to "eth1": EEXIST: ipv4: Address already assigned`.
 */
export function toPlumbError(err: unknown, what: string, opts: ToPlumbErrorOptions = {}): PlumbError {
  if (err instanceof PlumbError) return err
  const code = errnoOf(err)
  const nl = err instanceof NetlinkError ? err : undefined
  const detail = nl ? nl.detail : code ? `${code}: ${stripCode((err as Error).message, code)}` : err instanceof Error ? err.message : String(err)
  const fail = (c: ErrorCode, message: string, hint?: string): PlumbError =>
    new PlumbError(c, message, { cause: err, ...((opts.hint ?? hint) !== undefined ? { hint: opts.hint ?? hint } : {}) })

  if (!code) return fail('FAILED', `failed to ${what}: ${detail}`)
  const override = opts.overrides?.[code]
  if (override) return fail(override, `failed to ${what}: ${detail}`)

  if (nl?.kind && isMissingKind(nl)) {
    const mod = KIND_MODULES[nl.kind]
    return fail('UNSUPPORTED', `failed to ${what}: the kernel has no "${nl.kind}" link type${mod && mod !== nl.kind ? ` (${mod})` : ''}: ${detail}`, missingKindHint(nl.kind))
  }
  // rtnetlink answers a missing capability with EPERM; its EACCES refuses the request itself:
  // RTM_NEWADDR says so for an IPv6 address on an interface with IPv6 off ("IPv6 is disabled on
  // this device"), which is how Docker starts containers. "Run it as root" would be wrong there.
  if (code === 'EACCES' && nl) {
    return fail('FAILED', `failed to ${what}: ${detail}`, nl.op === 'RTM_NEWADDR' ? 'IPv6 is off on that interface (net.ipv6.conf.IFNAME.disable_ipv6=1): turn it on there first' : undefined)
  }
  const c = errorCodeOf(code)
  const hint =
    c === 'PERMISSION'
      ? PERMISSION_HINT
      : code === 'ENETUNREACH'
        ? 'the gateway is not on a connected subnet: add an address in its subnet first, or mark the route onlink'
        : code === 'ERANGE'
          ? 'a value is out of range (interface names are at most 15 bytes)'
          : code === 'EADDRNOTAVAIL'
            ? 'the kernel refused an address (a zero or multicast MAC, or an address that is not there)'
            : undefined
  return fail(c, `failed to ${what}: ${detail}`, hint)
}

/** The text after "CODE: " in an errno-bearing message ('setns: EINVAL: Invalid argument',
 *  node's 'ENOENT: no such file or directory, open ...'), so the code is not said twice. */
function stripCode(message: string, code: string): string {
  const i = message.indexOf(`${code}: `)
  return i >= 0 ? message.slice(i + code.length + 2) : message
}

// NLMSGERR layout (linux/netlink.h): int error; struct nlmsghdr msg; [payload unless
// NLM_F_CAPPED]; [TLVs when NLM_F_ACK_TLVS].
const NLM_F_CAPPED = 0x100
const NLM_F_ACK_TLVS = 0x200
const NLMSGERR_ATTR_MSG = 1

/** errno (positive, 0 = ACK) and extack text of an NLMSG_ERROR payload. */
export function parseNlmsgerr(data: Buffer, flags: number): { errno: number; extack?: string } {
  if (data.length < 4) return { errno: 0 }
  const errno = -data.readInt32LE(0) || 0 // no -0 for an ACK
  if (!(flags & NLM_F_ACK_TLVS) || data.length < 20) return { errno }
  const origLen = data.readUInt32LE(4)
  let off = 4 + (flags & NLM_F_CAPPED ? 16 : origLen)
  off = (off + 3) & ~3
  let extack: string | undefined
  while (off + 4 <= data.length) {
    const len = data.readUInt16LE(off)
    const type = data.readUInt16LE(off + 2) & 0x3fff
    if (len < 4 || off + len > data.length) break
    if (type === NLMSGERR_ATTR_MSG) {
      const s = data.subarray(off + 4, off + len)
      const nul = s.indexOf(0)
      extack = s.subarray(0, nul < 0 ? s.length : nul).toString('utf8')
    }
    off += (len + 3) & ~3
  }
  return extack ? { errno, extack } : { errno }
}

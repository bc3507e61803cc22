// Owner marks: what plumb writes into the interface alias (IFLA_IFALIAS) of everything it creates.

import { PlumbError, usageError } from '../errors.js'

/** guest: a guest's end; host: the host end of a guest's link; bridge: a bridge plumb made;
 *  moved: a host device moved into a guest; port: a host-side port of a bridge of plumb's own (a VXLAN port);
 *  node: a lab's ip netns node, marked on its `lo` (the netns itself has nowhere to hold a mark) */
export type MarkRole = 'guest' | 'host' | 'bridge' | 'moved' | 'port' | 'node'

export interface OwnerMark {
  v: 1
  role: MarkRole
  /** 'attach-veth' | 'macvlan' | 'vlan' | 'ovs-port' | 'p2p-link' | 'move-dev' */
  op: string
  /** canonical guest ref text */
  guest?: string
  /** the guest-side interface name */
  ifname?: string
  /** the other end's name */
  peer?: string
  bridge?: string
  /** a default route plumb replaced, to restore on detach: 'via=...,dev=...' free text */
  gw?: string
  extra?: Record<string, string>
}

export const MARK_PREFIX = 'plumb:'
/** IFALIASZ is 256 including the NUL. */
export const MARK_MAX_BYTES = 255

const ROLES: readonly MarkRole[] = ['guest', 'host', 'bridge', 'moved', 'port', 'node']
// Field -> key on the wire, in the order they are written.
const FIELDS = [
  ['role', 'role'],
  ['op', 'op'],
  ['guest', 'guest'],
  ['ifname', 'if'],
  ['peer', 'peer'],
  ['bridge', 'br'],
  ['gw', 'gw'],
] as const
const RESERVED = new Set<string>(['v', ...FIELDS.map(([, k]) => k)])
const KEY = /^[A-Za-z0-9_.-]+$/

/** Percent-encode what would break the `k=v k=v` framing: %, space, =, and control characters. */
function enc(v: string): string {
  return v.replace(/[%= \u0000-\u001f\u007f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`)
}

function dec(v: string): string | undefined {
  if (/%(?![0-9A-Fa-f]{2})/.test(v)) return undefined
  return v.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
}

/** A key formatMark accepts in `extra` (not one of the fixed fields). */
export const isMarkExtraKey = (k: string): boolean => KEY.test(k) && !RESERVED.has(k)

/** `plumb:1 role=guest op=attach-veth guest=docker:web if=eth1 peer=plab12cd34 br=br0`. */
export function formatMark(m: OwnerMark): string {
  const parts = [`${MARK_PREFIX}${m.v}`]
  for (const [field, key] of FIELDS) {
    const val = m[field]
    if (val !== undefined) parts.push(`${key}=${enc(val)}`)
  }
  for (const [k, val] of Object.entries(m.extra ?? {})) {
    // A bug, not user input: an extra key that could be misread as a field would corrupt the mark.
    if (!KEY.test(k) || RESERVED.has(k)) throw new PlumbError('FAILED', `failed to format owner mark: invalid extra key "${k}"`)
    parts.push(`${k}=${enc(val)}`)
  }
  const text = parts.join(' ')
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > MARK_MAX_BYTES) {
    throw usageError(`owner mark is ${bytes} bytes, the interface alias holds at most ${MARK_MAX_BYTES}: ${text.slice(0, 60)}...`, 'use shorter names (guest, bridge, interface) or a shorter netns path')
  }
  return text
}

/**
 * The exact inverse of formatMark. Anything that is not a well-formed version-1 mark gives
 * undefined, so plumb never claims (or deletes) an interface on a mark it cannot read.
 */
export function parseMark(alias: string | undefined): OwnerMark | undefined {
  if (typeof alias !== 'string' || !alias.startsWith(MARK_PREFIX)) return undefined
  const [head, ...tokens] = alias.split(' ')
  if (head !== `${MARK_PREFIX}1`) return undefined
  const fields: Record<string, string> = {}
  const extra: Record<string, string> = {}
  for (const tok of tokens) {
    if (tok === '') continue
    const eq = tok.indexOf('=')
    if (eq <= 0) return undefined
    const key = tok.slice(0, eq)
    const val = dec(tok.slice(eq + 1))
    if (val === undefined) return undefined
    if (RESERVED.has(key)) fields[key] = val
    else extra[key] = val
  }
  const role = fields.role
  if (role === undefined || !(ROLES as readonly string[]).includes(role) || fields.op === undefined) return undefined
  const m: OwnerMark = { v: 1, role: role as MarkRole, op: fields.op }
  for (const [field, key] of FIELDS) {
    if (field === 'role' || field === 'op') continue
    const val = fields[key]
    if (val !== undefined) m[field] = val
  }
  if (Object.keys(extra).length > 0) m.extra = extra
  return m
}

/** True for any alias plumb wrote (any mark version), false otherwise. */
export function isPlumbMark(alias?: string): boolean {
  return typeof alias === 'string' && alias.startsWith(MARK_PREFIX)
}

/** What `detach GUEST` undoes: a guest's ends, devices moved into it, and (on `detach host`) the host's own plumb ports (VXLAN). */
export const isGuestMark = (m: OwnerMark | undefined): m is OwnerMark => m !== undefined && (m.role === 'guest' || m.role === 'moved' || m.role === 'port')

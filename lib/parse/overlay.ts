// The VXLAN overlay's input: VNI, UDP port, the remotes' addresses (pure, table-tested).

import { usageError } from '../errors.js'
import { parseAddr, unusable } from './addr.js'
import type { Addr } from './addr.js'
import { toInt } from './link.js'

/** 24 bits: the VXLAN header's VNI field. */
export const VNI_MAX = 16_777_215
/** IANA's VXLAN port (the kernel's own default is Linux's older 8472). */
export const VXLAN_PORT = 4789

export function parseVni(v: string | number): number {
  const n = toInt(v)
  if (n === undefined || n < 1 || n > VNI_MAX) throw usageError(`invalid VNI "${String(v)}": must be an integer 1..${VNI_MAX}`, 'every host of one overlay uses the same VNI, e.g. --vni 42')
  return n
}

export function parseUdpPort(v: string | number, flag: string): number {
  const n = toInt(v)
  if (n === undefined || n < 1 || n > 65535) throw usageError(`invalid ${flag} "${String(v)}": must be a UDP port 1..65535`, `VXLAN's own port is ${VXLAN_PORT}`)
  return n
}

/** One address an overlay endpoint may use: unicast, no prefix. */
export function parseEndpointAddr(s: string, what: string): Addr {
  if (s.includes('/')) throw usageError(`${what} "${s}" takes an address, not a CIDR`, `drop the prefix: ${s.slice(0, s.indexOf('/'))}`)
  const a = parseAddr(s.trim(), what, s)
  const bad = unusable(a)
  if (bad) throw usageError(`${what} ${a.text} is ${bad}`)
  return a
}

/**
 * `--remote A,B --remote C` -> the remotes' canonical addresses, deduplicated, one family.
 * `local`, when given, must be of that family and not among them.
 */
export function parseRemotes(values: string[], local?: string): { remotes: string[]; family: 4 | 6 | undefined; local?: string } {
  const parts = values.flatMap((v) => String(v).split(',')).map((s) => s.trim())
  if (parts.some((p) => p === '')) throw usageError('empty address in --remote', 'write the remote hosts\' addresses separated by commas, e.g. --remote 198.18.20.2,198.18.20.3')
  const addrs = parts.map((p) => parseEndpointAddr(p, 'remote'))
  const loc = local === undefined ? undefined : parseEndpointAddr(local, '--local')
  const families = new Set([...addrs, ...(loc ? [loc] : [])].map((a) => a.family))
  if (families.size > 1) throw usageError('--remote and --local mix IPv4 and IPv6 addresses', 'an overlay runs over one underlay family')
  const remotes = [...new Set(addrs.map((a) => a.text))]
  if (loc && remotes.includes(loc.text)) throw usageError(`--local ${loc.text} is also given as a remote`, 'the remotes are the other hosts')
  const [family] = families
  return { remotes, family, ...(loc ? { local: loc.text } : {}) }
}

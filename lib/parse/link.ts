// Link parameters: MTU, VLAN IDs and trunk lists, macvlan modes.

import { usageError } from '../errors.js'

export const MTU_MIN = 68
export const MTU_MAX = 65535
/** RFC 8200: every IPv6 link carries at least 1280 bytes; the kernel drops IPv6 below it. */
export const MTU_MIN_IPV6 = 1280

/** A strict non-negative decimal integer from a string or number, or undefined. */
/** A non-negative decimal integer (no sign, no leading zeros, no exponent), or undefined. */
export function toInt(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined
  if (typeof v !== 'string') return undefined
  const t = v.trim()
  return /^(0|[1-9]\d{0,9})$/.test(t) ? Number(t) : undefined
}

export function parseMtu(v: string | number): number {
  const n = toInt(v)
  if (n === undefined || n < MTU_MIN || n > MTU_MAX) {
    throw usageError(`invalid MTU "${String(v)}": must be an integer ${MTU_MIN}..${MTU_MAX}`, `IPv6 needs an MTU of at least ${MTU_MIN_IPV6}; 1500 is the Ethernet default`)
  }
  return n
}

/** Throws when IPv6 addresses are requested on a link whose MTU is too small for IPv6. */
export function checkMtuForFamilies(mtu: number | undefined, families: Iterable<4 | 6>): void {
  if (mtu === undefined || mtu >= MTU_MIN_IPV6) return
  if ([...families].includes(6)) {
    throw usageError(`MTU ${mtu} is too small for IPv6 (minimum ${MTU_MIN_IPV6})`, `use --mtu ${MTU_MIN_IPV6} or more, or drop the IPv6 addresses`)
  }
}

export function parseVid(v: string | number): number {
  const n = toInt(v)
  if (n === undefined || n < 1 || n > 4094) {
    throw usageError(`invalid VLAN ID "${String(v)}": must be an integer 1..4094`, 'VLAN IDs 0 and 4095 are reserved by 802.1Q')
  }
  return n
}

/** `10,20,30-32` -> [10, 20, 30, 31, 32]: deduplicated, sorted. */
export function parseTrunks(s: string): number[] {
  if (typeof s !== 'string' || s.trim() === '') throw usageError('empty trunk list', 'write VIDs and ranges separated by commas, e.g. 10,20,30-32')
  const vids = new Set<number>()
  for (const raw of s.split(',')) {
    const item = raw.trim()
    if (item === '') throw usageError(`empty item in trunk list "${s}"`, 'write VIDs and ranges separated by commas, e.g. 10,20,30-32')
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(item)
    if (range) {
      const lo = parseVid(range[1]!)
      const hi = parseVid(range[2]!)
      if (lo > hi) throw usageError(`reversed range "${item}" in trunk list "${s}"`, `did you mean ${hi}-${lo}?`)
      for (let i = lo; i <= hi; i++) vids.add(i)
    } else {
      vids.add(parseVid(item))
    }
  }
  return [...vids].sort((a, b) => a - b)
}

export const MACVLAN_MODES = ['bridge', 'private', 'vepa', 'passthru', 'source'] as const
export type MacvlanMode = (typeof MACVLAN_MODES)[number]

export function parseMacvlanMode(s: string): MacvlanMode {
  const m = typeof s === 'string' ? s.trim().toLowerCase() : ''
  if ((MACVLAN_MODES as readonly string[]).includes(m)) return m as MacvlanMode
  throw usageError(`invalid macvlan mode "${String(s)}"`, `one of: ${MACVLAN_MODES.join(', ')} (bridge lets guests on the same parent talk)`)
}

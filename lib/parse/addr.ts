// Strict parsing of single IPv4/IPv6 addresses and prefixes, shared by the IP and route grammars.

import ipaddr from 'ipaddr.js'
import { usageError } from '../errors.js'

export type Family = 4 | 6

/** A parsed address: canonical text plus its bytes (4 or 16), for pure prefix arithmetic. */
export interface Addr {
  family: Family
  text: string
  bytes: number[]
}

/**
 * `s` as four dot-separated runs of 1-3 decimal digits (each octet's text), or undefined. Read
 * without a regular expression, ipaddr.js's included: a one-shot run from the start-up snapshot
 * compiles every expression it uses anew (V8 keeps none compiled in a snapshot, and has no
 * compiler under --jitless), and ipaddr.js tries its IPv6 expressions before its IPv4 ones:
 * ~0.3-0.6 ms an address. IPv6 is still ipaddr.js's.
 */
export function dottedQuad(s: string): string[] | undefined {
  const parts = s.split('.')
  return parts.length === 4 && parts.every((p) => p.length <= 3 && digits(p)) ? parts : undefined
}

/** One or more ASCII decimal digits, nothing else (no regular expression: see dottedQuad). */
const digits = (s: string): boolean => s.length > 0 && [...s].every((c) => c >= '0' && c <= '9')

/** `s` as a number written plainly: 1 to `maxDigits` decimal digits, no sign, space or leading zero ('0' itself is fine); else undefined. */
export function plainDecimal(s: string, maxDigits: number): number | undefined {
  return s.length <= maxDigits && digits(s) && (s === '0' || s[0] !== '0') ? Number(s) : undefined
}

/** `s` as a plain dotted-quad IPv4 address's four bytes (no leading zeros, each 0..255), or undefined. */
export function ipv4Bytes(s: string): number[] | undefined {
  const parts = dottedQuad(s)
  if (!parts || parts.some((p) => (p.length > 1 && p.startsWith('0')) || Number(p) > 255)) return undefined
  return parts.map(Number)
}

/**
 * Parse one address, family detected. `what` names it in errors ("address", "gateway").
 * IPv4 must be dotted-quad decimal: leading zeros are refused because inet_aton and some
 * tools read `010` as octal 8 while others read 10, so the user's intent is ambiguous.
 * IPv6 is canonicalised (RFC 5952: lowercase, longest zero run compressed).
 */
export function parseAddr(s: string, what: string, spec: string): Addr {
  if (s === '') throw usageError(`missing ${what} in "${spec}"`, 'write it as ADDR/PREFIX[@GATEWAY], e.g. 198.18.0.10/24@198.18.0.1')
  if (s.includes('%')) {
    throw usageError(`IPv6 zone id not allowed in ${what} "${s}"`, `drop "${s.slice(s.indexOf('%'))}": the interface is already implied`)
  }
  if (s.includes(':')) {
    if (!ipaddr.IPv6.isValid(s)) throw usageError(`invalid IPv6 ${what} "${s}"`, 'expected e.g. 2001:db8::10')
    const a = ipaddr.IPv6.parse(s)
    if (a.isIPv4MappedAddress()) {
      const v4 = a.toIPv4Address().toString()
      throw usageError(`IPv4-mapped IPv6 ${what} "${s}" is not an interface address`, `use the IPv4 address ${v4} instead`)
    }
    return { family: 6, text: a.toRFC5952String(), bytes: a.toByteArray() }
  }
  const bytes = ipv4Bytes(s)
  if (bytes) return { family: 4, text: bytes.join('.'), bytes }
  // refused: say why
  const parts = dottedQuad(s)
  if (!parts) throw usageError(`invalid IPv4 ${what} "${s}"`, 'expected four decimal octets, e.g. 198.18.0.10')
  const bad = parts.find((p) => Number(p) > 255)
  if (bad !== undefined) throw usageError(`invalid IPv4 ${what} "${s}": octet ${bad} is greater than 255`, 'each octet is 0..255, e.g. 198.18.0.10')
  throw usageError(`ambiguous IPv4 ${what} "${s}": leading zeros (some tools read them as octal)`, `did you mean ${parts.map(Number).join('.')}?`)
}

/** Addresses no interface or gateway may use, with the reason, or undefined when fine. */
export function unusable(a: Addr): string | undefined {
  const b = a.bytes
  if (b.every((x) => x === 0)) return 'the unspecified address'
  if (a.family === 4) {
    if (b[0] === 127) return 'a loopback address'
    if (b[0]! >= 224 && b[0]! <= 239) return 'a multicast address'
    if (b.every((x) => x === 255)) return 'the limited broadcast address'
    return undefined
  }
  if (b[0] === 0xff) return 'a multicast address'
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return 'the loopback address'
  return undefined
}

/** Parse a prefix length: decimal digits only, range 0..bits. */
export function parsePrefix(s: string, family: Family, spec: string): number {
  const max = family === 4 ? 32 : 128
  if (plainDecimal(s, 3) === undefined) {
    throw usageError(`invalid prefix length "/${s}" in "${spec}"`, `the prefix is a decimal number 0..${max} for IPv${family}`)
  }
  const n = Number(s)
  if (n > max) throw usageError(`prefix length /${n} out of range for IPv${family} in "${spec}"`, `IPv${family} prefixes are 0..${max}`)
  return n
}

/** The address with all host bits cleared. */
export function maskBytes(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8))
    return b & ((0xff << (8 - keep)) & 0xff)
  })
}

/** The address with all host bits set (IPv4 broadcast). */
export function broadcastBytes(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8))
    return b | (~(0xff << (8 - keep)) & 0xff)
  })
}

/** Canonical text of 4 or 16 address bytes. */
export function bytesToText(bytes: number[]): string {
  if (bytes.length === 4) return bytes.join('.')
  return (ipaddr.fromByteArray(bytes) as ipaddr.IPv6).toRFC5952String()
}

export function sameBytes(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

export function inSubnet(addr: number[], net: number[], prefix: number): boolean {
  return addr.length === net.length && sameBytes(maskBytes(addr, prefix), maskBytes(net, prefix))
}

// Interface names: kernel rules plus shell safety, and the derived (always ≤ 15 bytes) host-end name.

import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import { conflict, usageError } from '../errors.js'

/** IFNAMSIZ is 16 including the NUL: 15 bytes of UTF-8, not 15 characters. */
export const IFNAME_MAX_BYTES = 15

// Allowed by the kernel but refused here: these names end up in `ip` lines (dry-run, hints,
// recipes), and a name that needs quoting in a shell is a trap for the user.
const SHELL_META = new Set([...';$()&|<>`\'"\\*?[]{}!#~'])

function describeChar(c: string): string {
  const code = c.codePointAt(0)!
  if (code < 0x20 || code === 0x7f) return `control character U+${code.toString(16).padStart(4, '0').toUpperCase()}`
  if (/\s/u.test(c)) return 'whitespace'
  return `"${c}"`
}

/** Validate an interface name; returns it unchanged. `what` names it in the error ("host interface name"...). */
export function validateIfname(s: string, what = 'interface name'): string {
  if (typeof s !== 'string') throw usageError(`invalid ${what} ${JSON.stringify(s)}: not a string`, 'give one name of 1..15 bytes, e.g. eth1')
  if (s === '') throw usageError(`empty ${what}`, 'give a name of 1..15 bytes, e.g. eth1')
  const bytes = Buffer.byteLength(s, 'utf8')
  if (bytes > IFNAME_MAX_BYTES) {
    throw usageError(`${what} "${s}" is ${bytes} bytes, the kernel allows at most ${IFNAME_MAX_BYTES}`, 'use a shorter name (IFNAMSIZ counts bytes, not characters)')
  }
  if (s === '.' || s === '..') throw usageError(`invalid ${what} "${s}"`, '"." and ".." are refused by the kernel (they are sysfs directory entries)')
  // "all" and "default" collide with /proc/sys/net/*/conf/{all,default}: registration fails.
  if (s === 'all' || s === 'default') throw usageError(`invalid ${what} "${s}"`, `"${s}" is reserved by /proc/sys/net/*/conf/${s}; pick another name`)
  for (const c of s) {
    const code = c.codePointAt(0)!
    if (c === '/' || c === ':' || /\s/u.test(c) || code < 0x20 || code === 0x7f) {
      throw usageError(`invalid ${what} "${s}": contains ${describeChar(c)}`, `the kernel refuses "/", ":", whitespace and control characters in interface names`)
    }
    if (c === '%') {
      throw usageError(`invalid ${what} "${s}": contains "%"`, 'the kernel treats "%d" as a name template (eth%d becomes eth0, eth1...); pick a literal name')
    }
    if (SHELL_META.has(c)) {
      throw usageError(`invalid ${what} "${s}": contains ${describeChar(c)}`, `plumb refuses shell metacharacters (${[...SHELL_META].join(' ')}) so names can be used unquoted in ip commands`)
    }
  }
  return s
}

const MAX_VARIANTS = 64

/**
 * The host end's name for the veth whose guest end is `guestIfname` in the guest `guestKey`:
 * `pl` + 8 hex of sha256(guestKey NUL guestIfname) — 10 bytes, always under IFNAMSIZ.
 * Deterministic, so an idempotent re-run finds the same name. When `taken(name)` says the
 * name is used by something else, variant n (1, 2, ...) hashes `guestKey NUL guestIfname NUL n`,
 * so the sequence of candidates is itself deterministic.
 *
 * Not pipework's `v<ifname>pl<PID>`: with a 5-digit ifname and a 7-digit PID it overflows 15
 * bytes, and a PID is reused once the container is gone, so a stale host end of a dead
 * container can carry the very name a new container's attach wants.
 */
export function deriveHostIfname(guestKey: string, guestIfname: string, taken?: (name: string) => boolean): string {
  for (let n = 0; n < MAX_VARIANTS; n++) {
    // @noble/hashes, not node:crypto: loading node:crypto costs every one-shot run ~3 ms
    const h = sha256(utf8ToBytes(n === 0 ? `${guestKey}\0${guestIfname}` : `${guestKey}\0${guestIfname}\0${n}`))
    const name = `pl${bytesToHex(h.subarray(0, 4))}`
    if (!taken || !taken(name)) return name
  }
  throw conflict(`failed to derive a host interface name for "${guestIfname}" in ${guestKey}: ${MAX_VARIANTS} candidates all taken`, 'name the host end yourself with -l HOSTIF')
}

// MAC addresses: strict unicast parsing and `seed:STRING`, a stable locally administered MAC.

import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { usageError } from '../errors.js'

const MAC = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i

/**
 * The MAC derived from a seed: sha256 of the seed's UTF-8 bytes, first 6 bytes, then the
 * first octet gets the locally-administered bit (0x02) set and the multicast bit (0x01)
 * cleared. Stable across runs and machines, so a restarted guest keeps its MAC and its DHCP
 * lease; local admin keeps it clear of vendor (OUI) space. (@noble/hashes rather than
 * node:crypto, whose loading costs every one-shot run ~3 ms.)
 */
export function seedMac(seed: string): string {
  const b = sha256(utf8ToBytes(seed)).subarray(0, 6)
  b[0] = (b[0]! | 0x02) & 0xfe
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')
}

/** Parse `aa:bb:cc:dd:ee:ff` (or `-` separators) into lowercase colon form, unicast only; or `seed:STRING`. */
export function parseMac(s: string): string {
  if (typeof s !== 'string') throw usageError(`invalid MAC address ${JSON.stringify(s)}: not a string`, 'give one MAC, e.g. 02:42:c6:12:00:0a')
  const text = s.trim()
  if (text.startsWith('seed:')) {
    const seed = text.slice('seed:'.length)
    if (seed === '') throw usageError('empty seed in MAC "seed:"', 'write seed:STRING, e.g. seed:web-eth1')
    return seedMac(seed)
  }
  if (!MAC.test(text)) {
    const hex = text.replace(/[:-]/g, '')
    const why = /[^0-9a-f:-]/i.test(text)
      ? 'not hexadecimal'
      : hex.length !== 12
        ? `wrong length (${hex.length / 2} bytes, need 6)`
        : 'badly separated'
    throw usageError(`invalid MAC address "${s}": ${why}`, 'write six hex bytes like 02:42:c6:12:00:0a, or seed:STRING for a stable generated one')
  }
  const mac = text.toLowerCase().replace(/-/g, ':')
  const first = parseInt(mac.slice(0, 2), 16)
  if (mac === '00:00:00:00:00:00') throw usageError(`invalid MAC address "${s}": all zeros`, 'give a unicast MAC, or seed:STRING')
  if (mac === 'ff:ff:ff:ff:ff:ff') throw usageError(`invalid MAC address "${s}": the broadcast address`, 'give a unicast MAC, or seed:STRING')
  if (first & 0x01) {
    throw usageError(`invalid MAC address "${s}": multicast (low bit of the first octet is set)`, `an interface needs a unicast MAC, e.g. ${(first & 0xfe).toString(16).padStart(2, '0')}${mac.slice(2)}`)
  }
  return mac
}

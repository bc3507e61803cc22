// Durations the user types (`--timeout S`): a plain number of seconds, strict and bounded.

import { usageError } from '../errors.js'

export interface SecondsBounds {
  /** the smallest value allowed (default 0) */
  min?: number
  /** the smallest value is not allowed itself: "more than min" (a DHCP wait of 0 s can't succeed) */
  minExclusive?: boolean
  max: number
}

const DECIMAL = /^-?\d+(\.\d+)?$/

/**
 * `"10"`, `"2.5"` or a number -> seconds. Anything else ("abc", "", "-1", "1e3", "Infinity") is
 * a usage error naming `flag`: yargs' own number type turns "abc" into NaN, which a wait loop
 * compares false against forever and a shell script prints as `-ge NaN`.
 */
export function parseSeconds(v: unknown, flag: string, bounds: SecondsBounds): number {
  const min = bounds.min ?? 0
  const range = `${bounds.minExclusive ? `more than ${min}` : `${min}`} ${bounds.minExclusive ? 'and at most' : 'to'} ${bounds.max}`
  const bad = (why: string) => usageError(`${flag} ${why}: it takes a number of seconds, ${range}`, `e.g. ${flag} 10`)
  let n: number
  if (typeof v === 'number') n = v
  else if (typeof v === 'string' && DECIMAL.test(v.trim())) n = Number(v.trim())
  else if (v === '' || (typeof v === 'string' && v.trim() === '')) throw bad('is empty')
  else if (Array.isArray(v)) throw bad(`is given more than once (${v.map(String).join(', ')})`)
  else throw bad(`"${String(v)}" is not a number`)
  if (!Number.isFinite(n)) throw bad(`"${String(v)}" is not a number`)
  if (n < min || (bounds.minExclusive && n === min) || n > bounds.max) throw bad(`${n} is out of range`)
  return n
}

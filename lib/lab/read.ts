// Typed reads of a lab document's values: each one checks the shape at its path and fails with
// that path (exit 2), so parse.ts reads like the format it checks.

import type { PlumbError } from '../errors.js'
import { formatPath } from './source.js'
import type { LabSource, PathPart } from './source.js'

export type Path = readonly PathPart[]

export function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'nothing'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`
  return `${typeof v === 'number' ? 'the number' : 'the value'} ${String(v)}`
}

/** Edit distance, for "did you mean" hints on field and node names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length]!
}

/** The closest of `known` to `word`, when it is close enough to be a typo. */
export function closest(word: string, known: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestD = Infinity
  for (const k of known) {
    const d = distance(word.toLowerCase(), k.toLowerCase())
    if (d < bestD) [best, bestD] = [k, d]
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined
}

export class Reader {
  /** nodes of a kind plumb cannot deploy: naming one (an endpoint, a check) is that exit 5, not "unknown node" */
  readonly unsupported = new Map<string, PlumbError>()

  constructor(readonly src: LabSource) {}

  /** Fail for a node name that is not in the lab: its unsupported kind if it has one, else unknown. */
  unknownNode(name: string, path: Path, hint: string): never {
    throw this.unsupported.get(name) ?? this.src.fail(path, `unknown node "${name}"`, hint)
  }

  fail(path: Path, message: string, hint?: string): never {
    throw this.src.fail(path, message, hint)
  }

  /** Run a parser of lib/parse on a value; its error gets the path. */
  parse<T>(path: Path, fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      throw this.src.wrap(path, err)
    }
  }

  map(v: unknown, path: Path, what = 'a mapping'): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, `expected ${what}, got ${typeName(v)}`)
    return v as Record<string, unknown>
  }

  /** A mapping or nothing (`web:` with no fields is a node with only defaults). */
  optMap(v: unknown, path: Path): Record<string, unknown> {
    return v === null || v === undefined ? {} : this.map(v, path)
  }

  list(v: unknown, path: Path, what = 'a list'): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `expected ${what}, got ${typeName(v)}`)
    return v
  }

  /**
   * A string. A plain scalar YAML reads as a number or boolean (`name: 2e6912`, a node `1:`) is
   * taken as written, as containerlab's Go YAML does for a string field.
   */
  str(v: unknown, path: Path, what = 'a string'): string {
    if (typeof v === 'string') return v
    if (typeof v === 'number' || typeof v === 'boolean') {
      const written = this.src.written(path)
      if (written !== undefined) return written
    }
    return this.fail(path, `expected ${what}, got ${typeName(v)}`)
  }

  /** A string, or a number written without quotes (ports, values), as text: as written. */
  scalar(v: unknown, path: Path, what = 'a string or a number'): string {
    if (typeof v === 'string') return v
    if (typeof v === 'number' || typeof v === 'boolean') return this.src.written(path) ?? String(v)
    return this.fail(path, `expected ${what}, got ${typeName(v)}`)
  }

  int(v: unknown, path: Path, what: string, min: number, max: number): number {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) this.fail(path, `expected ${what} (an integer ${min}..${max}), got ${typeName(v)}`)
    return n
  }

  num(v: unknown, path: Path, what: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(path, `expected ${what} (a positive number), got ${typeName(v)}`)
    return v
  }

  /** A string or a list of strings, as a list. */
  strings(v: unknown, path: Path, what = 'a string or a list of strings'): string[] {
    if (typeof v === 'string') return [v]
    const l = this.list(v, path, what)
    return l.map((x, i) => this.str(x, [...path, i], 'a string'))
  }

  /** A mapping of NAME: string|number|boolean (env, sysctls, labels). */
  stringMap(v: unknown, path: Path): Record<string, string> {
    const m = this.map(v, path, 'a mapping of NAME: value')
    const out: Record<string, string> = {}
    for (const [k, x] of Object.entries(m)) out[k] = this.scalar(x, [...path, k], 'a string, number or boolean')
    return out
  }

  /** Refuse fields not in `known`; containerlab's fields in `ignored` are accepted and reported. */
  fields(m: Record<string, unknown>, path: Path, known: readonly string[], ignored: readonly string[] = [], seen?: string[]): void {
    for (const k of Object.keys(m)) {
      if (known.includes(k)) continue
      if (ignored.includes(k)) {
        seen?.push(formatPath([...path, k]))
        continue
      }
      const near = closest(k, known)
      throw this.src.failAtKey([...path, k], `unknown field "${k}"`, near ? `did you mean "${near}"?` : `the fields here are: ${known.join(', ')}`)
    }
  }
}

// A lab file's YAML with positions: every error names the file, the line and column, and the
// path inside the document (`topology.links[3].endpoints[1]`), before anything is touched.

import { LineCounter, isMap, isNode, isScalar, parseDocument } from 'yaml'
import type { Document } from 'yaml'
import { PlumbError, usageError } from '../errors.js'

export type PathPart = string | number

/** `topology.links[3].endpoints[1]`; a key that is not a plain word is quoted. */
export function formatPath(path: readonly PathPart[]): string {
  let out = ''
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(p)) out += out ? `.${p}` : p
    else out += `[${JSON.stringify(p)}]`
  }
  return out
}

export interface LabSource {
  file: string
  /** the document as plain JS (aliases and `<<` merge keys resolved) */
  value: unknown
  /** a USAGE error (exit 2) at `path`: `FILE:LINE:COL: PATH: message` */
  fail(path: readonly PathPart[], message: string, hint?: string): PlumbError
  /** the same, positioned at the key of the last path part (an unknown field) rather than its value */
  failAtKey(path: readonly PathPart[], message: string, hint?: string): PlumbError
  /** re-throw a parser's error (an IP spec, a MAC ...) as one at `path`, keeping its code and hint */
  wrap(path: readonly PathPart[], err: unknown): PlumbError
  /** the scalar at `path` exactly as written (`2e6912`, not the number it reads as), if it is one */
  written(path: readonly PathPart[]): string | undefined
}

export function loadSource(text: string, file: string): LabSource {
  const lineCounter = new LineCounter()
  let doc: Document.Parsed
  try {
    doc = parseDocument(text, { lineCounter, merge: true, prettyErrors: false, uniqueKeys: true })
  } catch (err) {
    throw usageError(`${file}: not YAML: ${(err as Error).message}`)
  }
  const first = doc.errors[0]
  if (first) {
    const at = lineCounter.linePos(first.pos[0])
    const what = first.message.split('\n')[0]
    throw usageError(`${file}${at ? `:${at.line}:${at.col}` : ''}: YAML syntax error: ${what}`, 'check the indentation and the brackets/quotes on that line')
  }
  const where = (path: readonly PathPart[]): string => {
    // The deepest node of the path that exists (a missing key is reported at its parent).
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)
      if (isNode(node) && node.range) {
        const pos = lineCounter.linePos(node.range[0])
        return `:${pos.line}:${pos.col}`
      }
    }
    return ''
  }
  const keyAt = (path: readonly PathPart[]): string | undefined => {
    const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents
    if (!isMap(parent)) return undefined
    const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path[path.length - 1]))
    const range = isNode(pair?.key) ? pair.key.range : undefined
    if (!range) return undefined
    const pos = lineCounter.linePos(range[0])
    return `:${pos.line}:${pos.col}`
  }
  const fail = (path: readonly PathPart[], message: string, hint?: string): PlumbError => usageError(`${file}${where(path)}: ${path.length ? `${formatPath(path)}: ` : ''}${message}`, hint)
  return {
    file,
    value: doc.toJS({ maxAliasCount: 1000 }),
    fail,
    failAtKey: (path, message, hint) => usageError(`${file}${keyAt(path) ?? where(path)}: ${formatPath(path)}: ${message}`, hint),
    written(path) {
      const node = doc.getIn(path, true)
      return isScalar(node) && typeof node.source === 'string' ? node.source : undefined
    },
    wrap(path, err) {
      if (!(err instanceof PlumbError)) return fail(path, err instanceof Error ? err.message : String(err))
      const e = new PlumbError(err.code, `${file}${where(path)}: ${formatPath(path)}: ${err.message}`, { cause: err, ...(err.hint !== undefined ? { hint: err.hint } : {}) })
      return e
    },
  }
}

// The build's trim of node's own code cache in plumb's start-up snapshots (scripts/bundle.mjs).
// A user-land snapshot blob ends with V8's code cache for every one of node's built-in modules
// (~320 of them, ~2.6 MB of a 6 MB blob), which every run reads from the file, copies, and hands
// to node's built-in loader. A built-in the snapshot's heap already holds never compiles again,
// and plumb's runs load only one family of built-ins the heap lacks (node:child_process and what
// it requires: a spawn). So the blob keeps the cache of those and drops the rest (`--build-snapshot-
// config`'s `withoutCodeCache` drops the cache too, but also every compiled function in the heap,
// plumb's trained bytecode included: slower, measured). A built-in loaded anyway compiles from its
// source: slower, never wrong; NODE_DEBUG_NATIVE=CODE_CACHE says which ("without code cache").
// Written here because node offers no way to choose the built-ins a blob keeps. The build runs
// node once from the trimmed blob before vouching for it, and keeps the whole blob when the trim
// does not recognise the layout.

import { startupSnapshot } from 'node:v8'
import { writeFileSync } from 'node:fs'

/**
 * What a run may load that a blob's heap may lack, as JavaScript for a plain node, which the build
 * runs with its stderr on /dev/null and asks which modules it loaded: node:child_process (plumb's
 * spawns: lib/proc.ts), and node's stderr stream, which node builds when it first destroys a
 * socket (net's Socket._destroy compares the socket with process.stderr): node:tty's for a
 * terminal, a file's stream for a file (as here), a pipe's socket (node:net, in every heap).
 */
export const LAZY_BUILTINS = "require('node:child_process'); require('node:tty'); process.stderr"

/** The environment variable naming the file a snapshot's builder lists its heap's built-ins in. */
export const SNAPSHOT_MODULES_ENV = 'PLUMB_SNAPSHOT_MODULES'

/**
 * In a snapshot's builder (bin/snapshot.ts, bin/cni-snapshot.ts): when the heap is written, the
 * built-in modules it holds go to the file PLUMB_SNAPSHOT_MODULES names, one id a line.
 */
export function listHeapBuiltins(): void {
  const file = process.env[SNAPSHOT_MODULES_ENV]
  if (!file) return
  startupSnapshot.addSerializeCallback(() => {
    writeFileSync(file, builtinIds((process as unknown as { moduleLoadList: string[] }).moduleLoadList).join('\n'))
  })
}

/** The built-in modules' ids in node's process.moduleLoadList ("NativeModule fs", beside bindings). */
export function builtinIds(moduleLoadList: readonly string[]): string[] {
  return moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length))
}

const MAGIC = 0x0143da19
const ID = /^[\w./-]{1,128}$/

/**
 * `blob` with only the code cache entries whose built-in `keep` accepts, or undefined when the
 * layout is not node's as known here (node 20's SnapshotData::ToBlob): magic (u32), metadata (a
 * u8 type, three strings, the V8 cache tag and flags, u32 each; a string is a u64 length and its
 * bytes), V8's blob (an i32 length and its bytes), the isolate's and the environment's data, then
 * the code cache to the end: a u64 count, and for each built-in its id (a string) and its cache
 * (a u64 length and the bytes). The environment's data has no length of its own: the cache starts
 * at the first offset after V8's blob from which entries run exactly to the end.
 */
export function trimBuiltinCodeCache(blob: Buffer, keep: (id: string) => boolean): { blob: Buffer; kept: string[]; dropped: string[] } | undefined {
  const n = blob.length
  const u64 = (at: number): number | undefined => (at + 8 <= n && blob.readUInt32LE(at + 4) === 0 ? blob.readUInt32LE(at) : undefined)
  if (n < 64 || blob.readUInt32LE(0) !== MAGIC) return undefined
  let at = 5
  for (let i = 0; i < 3; i++) {
    const len = u64(at)
    if (len === undefined || len > 64) return undefined
    at += 8 + len
  }
  at += 8
  if (at + 4 > n) return undefined
  const v8Size = blob.readInt32LE(at)
  const v8End = at + 4 + v8Size
  if (v8Size <= 0 || v8End > n) return undefined
  for (let start = v8End; start + 8 <= n; start++) {
    const entries = entriesFrom(blob, start, u64)
    if (!entries) continue
    const kept = entries.filter((e) => keep(e.id))
    const count = Buffer.alloc(8)
    count.writeUInt32LE(kept.length, 0)
    const parts = [blob.subarray(0, start), count]
    for (const e of kept) parts.push(blob.subarray(e.from, e.to))
    return { blob: Buffer.concat(parts), kept: kept.map((e) => e.id), dropped: entries.filter((e) => !keep(e.id)).map((e) => e.id) }
  }
  return undefined
}

/** The code cache's entries when they start at `start` and run exactly to the blob's end. */
function entriesFrom(blob: Buffer, start: number, u64: (at: number) => number | undefined): Array<{ id: string; from: number; to: number }> | undefined {
  const count = u64(start)
  if (!count || count > 4096) return undefined
  const out: Array<{ id: string; from: number; to: number }> = []
  let at = start + 8
  for (let i = 0; i < count; i++) {
    const from = at
    const idLen = u64(at)
    if (!idLen || idLen > 128 || at + 8 + idLen > blob.length) return undefined
    const id = blob.toString('latin1', at + 8, at + 8 + idLen)
    if (!ID.test(id)) return undefined
    at += 8 + idLen
    const size = u64(at)
    if (size === undefined || at + 8 + size > blob.length) return undefined
    at += 8 + size
    out.push({ id, from, to: at })
  }
  return at === blob.length ? out : undefined
}

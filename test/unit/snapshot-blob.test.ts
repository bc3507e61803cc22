// lib/snapshot-blob.ts's trim of node's code cache in a start-up snapshot blob, on blobs laid out
// as node 20 writes them (the built blobs themselves: test/unit/launcher.test.ts).

import test from 'ava'
import { builtinIds, trimBuiltinCodeCache } from '../../lib/snapshot-blob.js'

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(v)
  return b
}
const u64 = (v: number): Buffer => Buffer.concat([u32(v), u32(0)])
const str = (s: string): Buffer => Buffer.concat([u64(s.length), Buffer.from(s, 'latin1')])
const entry = (id: string, bytes: Buffer): Buffer => Buffer.concat([str(id), u64(bytes.length), bytes])

/** A blob: header, V8's part, the environment's data, and the code cache of `entries`. */
function blob(entries: Array<[string, Buffer]>, env = Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7])): { blob: Buffer; head: Buffer } {
  const v8 = Buffer.alloc(300, 0xab)
  const head = Buffer.concat([u32(0x0143da19), Buffer.from([1]), str('20.20.2'), str('x64'), str('linux'), u32(0xd155705a), u32(0), Buffer.from(Int32Array.of(v8.length).buffer), v8, env])
  return { blob: Buffer.concat([head, u64(entries.length), ...entries.map(([id, b]) => entry(id, b))]), head }
}

const cache = (n: number, fill: number): Buffer => Buffer.alloc(n, fill)

test('keeps the entries asked for, in order, and everything before the code cache byte for byte', (t) => {
  const entries: Array<[string, Buffer]> = [['fs', cache(40, 1)], ['child_process', cache(25, 2)], ['internal/child_process', cache(9, 3)], ['zlib', cache(60, 4)]]
  const { blob: whole, head } = blob(entries)
  const keep = new Set(['child_process', 'internal/child_process'])
  const trimmed = trimBuiltinCodeCache(whole, (id) => keep.has(id))
  t.truthy(trimmed)
  t.deepEqual(trimmed!.kept, ['child_process', 'internal/child_process'])
  t.deepEqual(trimmed!.dropped, ['fs', 'zlib'])
  t.deepEqual(trimmed!.blob, Buffer.concat([head, u64(2), entry('child_process', cache(25, 2)), entry('internal/child_process', cache(9, 3))]))
  // nothing kept: an empty cache, which node reads as none
  t.deepEqual(trimBuiltinCodeCache(whole, () => false)!.blob, Buffer.concat([head, u64(0)]))
})

test("the environment's data is skipped even where it could be read as a count", (t) => {
  // the env bytes start with a u64 3, as a count of entries would: they must not be taken for the cache
  const { blob: whole } = blob([['a', cache(5, 9)], ['b', cache(6, 8)]])
  t.deepEqual(trimBuiltinCodeCache(whole, (id) => id === 'b')!.kept, ['b'])
})

test('a blob whose layout is not known is left alone (undefined): another magic, a cut file, an entry past the end', (t) => {
  const { blob: whole } = blob([['fs', cache(40, 1)]])
  const other = Buffer.from(whole)
  other.writeUInt32LE(0x12345678, 0)
  t.is(trimBuiltinCodeCache(other, () => true), undefined)
  t.is(trimBuiltinCodeCache(whole.subarray(0, whole.length - 1), () => true), undefined)
  t.is(trimBuiltinCodeCache(Buffer.concat([whole, Buffer.from([0])]), () => true), undefined)
  t.is(trimBuiltinCodeCache(Buffer.alloc(10), () => true), undefined)
  // a blob already without a cache has nothing to trim
  t.is(trimBuiltinCodeCache(blob([]).blob, () => true), undefined)
})

test("the built-ins' ids in node's module load list, bindings left out", (t) => {
  t.deepEqual(builtinIds(['Internal Binding fs', 'NativeModule internal/fs/utils', 'NativeModule fs', 'Internal Binding uv']), ['internal/fs/utils', 'fs'])
})

// Whether the `plumb` launcher (native/launcher.c) may start node from the CLI's V8 start-up snapshot
// (dist/plumb.blob), and doctor's account of why a run does not use it. The build (scripts/
// bundle.mjs) vouches for the blob once node has run from it: a stamp beside it holding the
// CPU's identity (its features), with node's mtime copied onto it (`touch -r`), which the launcher compares
// to the nanosecond with two stat()s, no spawn (another node binary, even at the same path, has another mtime). node refuses a snapshot made by another node binary, under other V8 flags or
// on a CPU with other features (it exits 14 before running anything, measured), so the launcher
// uses the blob only when the stamp vouches for all three, and otherwise runs the code-cache path.

import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Script } from 'node:vm'

export const SNAPSHOT_BLOB = 'plumb.blob'
/** The same command line with the ops bundle loaded too: what the launcher starts an op from. */
export const SNAPSHOT_OPS_BLOB = 'plumb-ops.blob'
/** The CNI plugin's (bin/cni-snapshot.ts): a runtime's ADD and DEL start from it. */
export const SNAPSHOT_CNI_BLOB = 'plumb-cni.blob'
export const SNAPSHOT_STAMP = 'plumb.blob.ok'

/**
 * The V8 flags the snapshot is built and run with (native/launcher.c passes the same; node refuses a
 * blob under other flags). --no-rehash-snapshot: V8 would otherwise rehash every string and
 * hash table in the heap with a fresh seed at each start (~2 ms of --help here); the seed stays
 * the build's random one, a hash-flooding guard a one-shot command fed its own argv can do without.
 * --no-sparkplug: V8's baseline compiler compiles the functions a run calls often, in batches on
 * the main thread, for a speed-up a 30-50 ms command does not live to see (paired, 40 rounds:
 * --help 27.1 -> 25.9 ms, ls 49.6 -> 47.0, an attach 53.3 -> 52.3). --jitless goes further: no
 * optimising compiler either (its jobs took the second core and their results the main thread's
 * time in a one-shot), regular expressions interpreted, no executable code pages; paired against
 * the same build without it: an attach 62.4 -> 59.0 ms (--no-opt alone 59.4, interpreted regular
 * expressions alone 60.8; 40 rounds), ls 45.0 -> 43.2 (50), a CNI ADD 57.5 -> 54.8 (40), a 40-node
 * lab's deploy 281 -> 283 ms and destroy 223 -> 207 (6). `plumb watch`, which runs for days, is
 * started from the code cache with the compilers instead (native/launcher.c). --no-expose-wasm: what
 * --jitless implies, said so that node does not warn about the conflict at every start (nothing in
 * plumb uses WebAssembly). --no-flush-bytecode: the builder loads the
 * ops bundle from its code cache (scripts/code-cache.cjs: trained on dry runs and ls), which
 * holds the bytecode of what those ran; V8 otherwise drops bytecode not run lately at a GC, and
 * the builder's GCs dropped all of it before the heap was written (~270 functions an attach then
 * compiled again at each run; ls 42.4 -> 40.0 ms paired with it kept).
 */
export const SNAPSHOT_NODE_FLAGS = ['--no-rehash-snapshot', '--no-sparkplug', '--no-flush-bytecode', '--jitless', '--no-expose-wasm']

/** Whether this process started from the snapshot (with its V8 flags). */
export const fromSnapshot = (): boolean => SNAPSHOT_NODE_FLAGS.every((f) => process.execArgv.includes(f))

/**
 * Where a bundle's code cache for this process is (lib/cli/bundle.ts): V8 rejects a cache made
 * under other V8 flags, and a run from the start-up snapshot has the snapshot's, so the ops bundle
 * has a cache for each way in (the build trains both: scripts/code-cache.cjs).
 */
export function codeCacheFile(file: string): string {
  return fromSnapshot() ? `${file}.snapshot.cache` : `${file}.cache`
}

/**
 * A bundle (dist/*.cjs) compiled as its CommonJS wrapper from the code cache this process takes
 * (codeCacheFile; `cached` false when there is none, and it compiled from source): what
 * lib/cli/bundle.ts runs and what doctor checks. latin1: the bundles are ASCII (esbuild escapes
 * the rest; the build checks), and decoding them as UTF-8 took ~2 ms of a run, latin1 ~0.2.
 * node:vm and node:module are taken when called, not imported: this module is in the start-up
 * snapshot (bin/snapshot.ts), whose builder node warns may hold them out of sync.
 */
export function compileBundle(file: string): { script: Script; cached: boolean } {
  let cachedData: Buffer | undefined
  try {
    cachedData = readFileSync(codeCacheFile(file))
  } catch {
    // not built, or removed: compile from source
  }
  const { Script: VmScript } = process.getBuiltinModule('node:vm')
  const { wrap } = process.getBuiltinModule('node:module')
  const script = new VmScript(wrap(readFileSync(file, 'latin1')), { filename: file, ...(cachedData ? { cachedData } : {}) })
  return { script, cached: cachedData !== undefined }
}

/**
 * The stamp's second line: how the build trained the code the ops and CNI blobs hold compiled
 * (scripts/code-cache.cjs). Real ops and CNI calls (as root, in a mount namespace and a netns of
 * the build's own) leave their own paths compiled; dry runs only leave a real op more to compile
 * at each run (~2 ms).
 */
export const SNAPSHOT_TRAINED_REAL = 'ops trained on real ops'
export const SNAPSHOT_TRAINED_DRY = 'ops trained on dry runs only'

/** The stamp's account of the ops' training ('' from a build before it said). */
export function snapshotTraining(dist: string): string {
  try {
    return readFileSync(join(dist, SNAPSHOT_STAMP), 'utf8').split('\n')[1] ?? ''
  } catch {
    return ''
  }
}

/** Where the launcher reads the CPU's identity: its features on one line (V8 folds them into the tag it checks). */
export const CPU_MODALIAS = '/sys/devices/system/cpu/modalias'

/** The first line of CPU_MODALIAS, without its newline, as the launcher reads it ('' without one). */
export function cpuIdentity(): string {
  try {
    return readFileSync(CPU_MODALIAS, 'utf8').split('\n')[0] ?? ''
  } catch {
    return ''
  }
}

/**
 * Whether the launcher in `dist` starts `node` (the first on PATH) from the snapshot, and if not
 * why: the same tests as native/launcher.c, in its order.
 */
export function snapshotVerdict(dist: string, node: string | undefined, env: NodeJS.ProcessEnv): { used: boolean; why: string } {
  const blob = join(dist, SNAPSHOT_BLOB)
  let stampTime: bigint
  try {
    statSync(blob)
  } catch {
    return { used: false, why: `no ${blob}: the build could not make one (its node lacks --build-snapshot?)` }
  }
  if (env.NODE_OPTIONS) return { used: false, why: `NODE_OPTIONS is set ("${env.NODE_OPTIONS}"): node refuses a snapshot under other V8 flags, so the launcher does not offer it` }
  if (!node) return { used: false, why: 'no node on PATH' }
  try {
    stampTime = statSync(join(dist, SNAPSHOT_STAMP), { bigint: true }).mtimeNs
  } catch {
    return { used: false, why: `no ${join(dist, SNAPSHOT_STAMP)}: the build did not vouch for the snapshot (node refused it then)` }
  }
  // the launcher compares them to the nanosecond
  if (statSync(node, { bigint: true }).mtimeNs !== stampTime) return { used: false, why: `${node} is not the node that built it (another binary or version)` }
  let stamped = ''
  try {
    stamped = readFileSync(join(dist, SNAPSHOT_STAMP), 'utf8').split('\n')[0] ?? ''
  } catch {
    // unreadable: as a different CPU
  }
  if (stamped !== cpuIdentity()) return { used: false, why: 'this CPU has other features than the one it was built on' }
  return { used: true, why: `${blob} vouched for ${node} on this CPU` }
}

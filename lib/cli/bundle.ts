// Runs one of plumb's CommonJS bundles (dist/*.cjs) from the V8 code cache the build wrote beside
// it (FILE.cache, scripts/code-cache.cjs), so a one-shot command does not compile a megabyte of
// JavaScript on every run. Node 20 has no compile cache of its own (module.enableCompileCache is
// Node 22) and takes cachedData only for a classic script, hence vm.Script over the CommonJS
// wrapper. A missing or rejected cache (another node binary) only costs the compile; it is never
// an error. Used by the executable (bin/plumb.cts: the CLI or CNI bundle) and by the CLI for its
// ops (common.ts's ops(): dist/plumb-ops.cjs).

import { dirname } from 'node:path'
import type { Script } from 'node:vm'
import { compileBundle } from '../snapshot.js'

/**
 * End a one-shot run with its exit code once main() has resolved: everything it did is awaited by
 * then, and stdout and stderr are synchronous on Linux (files, pipes, terminals), so nothing is
 * left to do but what a natural exit does after it: dispose of the heap, page by page (~2 ms of
 * --help here). What a run leaves behind on purpose (a DHCP supervisor) is detached already.
 */
export function exitNow(code: number): never {
  process.exit(code)
}

/** The scripts this process ran, by file: the build writes their code caches from them. */
export const loadedBundles = new Map<string, Script>()

/**
 * Run the bundle `file` and return its exports. `provided` answers its require() of those ids
 * with these values instead of a module: the modules it shares with the bundle that loads it
 * (one copy of each: one error class, one configuration).
 */
export function loadBundle<T>(file: string, provided: Record<string, unknown> = {}): T {
  const { script } = compileBundle(file)
  loadedBundles.set(file, script)
  // taken when a bundle loads, not imported: see compileBundle
  const nodeRequire = process.getBuiltinModule('node:module').createRequire(file)
  const require = Object.assign((id: string): unknown => (Object.hasOwn(provided, id) ? provided[id] : nodeRequire(id)), nodeRequire)
  const mod = { exports: {} as T }
  ;(script.runInThisContext() as (...args: unknown[]) => void).call(mod.exports, mod.exports, require, mod, file, dirname(file))
  return mod.exports
}

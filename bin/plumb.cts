#!/usr/bin/env node
// plumb's executable (dist/plumb.cjs): runs the one-file CLI bundle (dist/plumb-cli.cjs) from
// the V8 code cache the build wrote beside it, so a one-shot command does not spend ~40 ms
// compiling 1 MB of JavaScript on every run. Node 20 has no compile cache of its own
// (module.enableCompileCache is Node 22), hence this loader over vm.Script's cachedData. A
// missing or rejected cache (say, another node binary) only costs that time; it is never an error.
// With CNI_COMMAND set, a container runtime is calling plumb as a CNI plugin: the CNI bundle
// (dist/plumb-cni.cjs, no yargs) answers instead.

import { readFileSync } from 'node:fs'
import { createRequire, wrap } from 'node:module'
import { dirname, join } from 'node:path'
import { Script } from 'node:vm'

interface CliBundle {
  main(argv: string[]): Promise<number>
}

const file = join(__dirname, process.env.CNI_COMMAND ? 'plumb-cni.cjs' : 'plumb-cli.cjs')
let cachedData: Buffer | undefined
try {
  cachedData = readFileSync(`${file}.cache`)
} catch {
  // not built, or removed: compile from source
}
const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file, ...(cachedData ? { cachedData } : {}) })
const mod = { exports: {} as CliBundle }
;(script.runInThisContext() as (...args: unknown[]) => void).call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file))
void mod.exports.main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})

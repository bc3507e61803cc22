// The CNI bundle's entry (dist/plumb-cni.cjs): plumb answering as a CNI plugin (dist/plumb.cjs
// loads it when CNI_COMMAND is set). Its own bundle, so a runtime's every ADD and DEL loads
// neither yargs nor the CLI's commands; cniMain, attachVeth and codeCacheFile are there for the
// build's code-cache training run (scripts/code-cache.cjs), which plans an attach with --dry-run
// and, as root, runs real ADDs and DELs; relocate and run for the CNI start-up snapshot
// (bin/cni-snapshot.ts), which holds it loaded and runs one program at build time.

import { readFileSync } from 'node:fs'
import { cniMain } from '../lib/cni/plugin.js'
import { configFromEnv, configure } from '../lib/config.js'
import { writeAll } from '../lib/cli/io.js'
import { restoreLauncherEnv } from '../lib/cli/launcher-env.js'

// Straight to fds 1 and 2 (lib/cli/io.ts: process.stdout on the runtime's pipe would build a
// net.Socket, ~2 ms of every ADD and DEL)
const io = {
  out: (text: string) => writeAll(1, `${text}\n`),
  err: (text: string) => writeAll(2, `${text}\n`),
}

export function main(): Promise<number> {
  restoreLauncherEnv(process.env)
  configure(configFromEnv(process.env))
  return cniMain(process.env, () => readFileSync(0, 'utf8'), io)
}

export { relocate } from '../lib/cli/relocate.js'

export { cniMain }
export { attachVeth } from '../lib/ops/attach-veth.js'
export { codeCacheFile } from '../lib/snapshot.js'
export { run } from '../lib/proc.js'

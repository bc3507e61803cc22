// The CNI plugin's V8 start-up snapshot entry (dist/plumb-cni-snapshot.cjs, made into
// dist/plumb-cni.blob by the build with `node --build-snapshot`): the CNI bundle
// (dist/plumb-cni.cjs) loaded and initialised from the code cache the build trained under the
// snapshot's V8 flags (scripts/code-cache.cjs), nothing run. A runtime's ADD or DEL that starts
// from it (native/launcher.c, which the launcher `plumb cni install` writes runs) then neither reads
// nor compiles the bundle: ~10 ms of every call (bench/README.md). As in bin/snapshot.ts, what
// depends on the run (argv, the environment, stdin, where the package is) is read in the
// deserialised main, and the setns addon loads on first use, after it.

import { startupSnapshot } from 'node:v8'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { exitNow, loadBundle, loadedBundles } from '../lib/cli/bundle.js'
import { listHeapBuiltins } from '../lib/snapshot-blob.js'

interface CniBundle {
  main(): Promise<number>
  relocate(url: string): void
  run(file: string, args: string[]): Promise<{ exitCode: number }>
}

// The build runs this from dist/. The compiled script itself (a vm.Script) cannot be in a heap
// snapshot, only what it made: the loader's record of it goes.
const cni = loadBundle<CniBundle>(join(process.cwd(), 'plumb-cni.cjs'))
loadedBundles.clear()

// An ADD with IPAM runs the IPAM plugin: one program run the way plumb runs them (lib/proc.ts)
// here, so that node:child_process and the pipes' node:net are loaded and their paths compiled in
// the heap, not at every ADD. Awaited: the builder writes the heap once its event loop is empty.
void cni.run(process.execPath, ['--version']).then((r) => {
  if (r.exitCode !== 0) throw new Error(`${process.execPath} --version: exit ${r.exitCode}`)
})

// the build keeps node's code cache for the built-ins the heap lacks only (lib/snapshot-blob.ts)
listHeapBuiltins()

startupSnapshot.setDeserializeMainFunction(() => {
  // argv[1] is dist/plumb.cjs: the launcher names it so that this run knows where it is installed.
  cni.relocate(pathToFileURL(join(dirname(process.argv[1] ?? ''), 'plumb-cni.cjs')).href)
  void cni.main().then(exitNow)
})

// The V8 start-up snapshots' entry (dist/plumb-snapshot.cjs, made into dist/plumb.blob and
// dist/plumb-ops.blob by the build with `node --build-snapshot`): the command line (yargs and every
// command's flags) is loaded and initialised here, at build time, and for the second blob the ops
// it calls too (lib/cli/ops.ts, loaded and initialised, nothing run); the paths
// every run takes (argument parsing, help, usage errors) are run once so that their compiled code
// is in the snapshot too. A run that starts from it (the `plumb`
// launcher, native/launcher.c) begins with the CLI in the heap. What depends on the run is read in
// the deserialised main, never here: argv, the environment, stdout, where the package is. The
// two native bindings (netlink's, our setns addon) cannot be in a snapshot: nothing here may
// load them (a failed load is remembered), and both load on first use, after it.

import { startupSnapshot } from 'node:v8'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { exitNow, loadedBundles } from '../lib/cli/bundle.js'
import { ops } from '../lib/cli/common.js'
import { loadCommands, main } from '../lib/cli/index.js'
import { listHeapBuiltins } from '../lib/snapshot-blob.js'

// The bundle's import.meta.url (scripts/bundle.mjs): the package root, node_modules and the
// addon are found from it. The build runs this from dist/; a run sets it to where it started.
declare let __plumbModuleUrl: string

const quiet = { out: () => undefined, err: () => undefined }
// Paths that run no handler, so load neither the ops bundle (lib/cli/ops.ts: the snapshot holds
// the command line only) nor the native bindings: --version, help texts, usage errors.
const training = [
  ['--version'],
  ['--help'],
  ['attach-veth', '--help'],
  ['ls', '--help'],
  ['attach-veth'],
  ['attach-veth', 'pid:1', 'pt-train0', '--bogus'],
  ['macvlan', '--json'],
  ['atach-veth'],
]

// the build keeps node's code cache for the built-ins the heap lacks only (lib/snapshot-blob.ts)
listHeapBuiltins()

/** Whether this blob holds the ops bundle too (dist/plumb-ops.blob): read once, at build time. */
const withOps = process.env.PLUMB_SNAPSHOT_OPS === '1'

async function train(): Promise<void> {
  __plumbModuleUrl = pathToFileURL(join(process.cwd(), 'plumb-snapshot.cjs')).href
  await loadCommands([])
  for (const argv of training) await main(argv, quiet, {})
  if (loadedBundles.size) throw new Error(`the snapshot's training loaded ${[...loadedBundles.keys()].join(', ')}: the training runs no op`)
  if (withOps) {
    // loaded and initialised (no op runs: nothing here may load a binding, or leave a socket
    // open); the compiled script itself (a vm.Script) cannot be in a heap snapshot, only what it made
    await ops()
    loadedBundles.clear()
    await unixSocketRoundTrip()
  }
  __plumbModuleUrl = ''
}

/**
 * One request and answer over a unix socket, closed before the heap is written: node:net's and
 * its streams' functions that an engine or OVSDB request runs are then compiled in the snapshot
 * (--no-flush-bytecode keeps them), not lazily at every run that asks Docker or OVS (`ls` and an
 * attach ~2 ms faster, paired). The answer comes from the build (scripts/bundle.mjs serves it at
 * PLUMB_SNAPSHOT_ECHO): a net.Server listening here would load node:cluster, node:child_process
 * and node:dgram into the heap (0.17 MB that every op would read, ~0.3-0.5 ms). No timer: a
 * cleared timer's list stays in node's timer queue until it would have fired, and one in the heap
 * broke the runs' own timers (doctor aborted).
 */
async function unixSocketRoundTrip(): Promise<void> {
  const path = process.env.PLUMB_SNAPSHOT_ECHO
  if (!path) throw new Error('PLUMB_SNAPSHOT_ECHO is not set: the ops blob is built by scripts/bundle.mjs, which serves the round trip')
  const net = await import('node:net')
  await new Promise<void>((resolve, reject) => {
    const sock = net.createConnection({ path })
    sock.on('connect', () => sock.write('GET / HTTP/1.1\r\nConnection: close\r\n\r\n'))
    sock.on('data', () => undefined)
    sock.on('end', () => {
      sock.destroy()
      resolve()
    })
    sock.on('error', reject)
  })
}

// Done while the builder drains its event loop, before it writes the heap; a failure fails the build.
train().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})

startupSnapshot.setDeserializeMainFunction(() => {
  // argv[1] is dist/plumb.cjs: the launcher names it so that this run knows where it is installed.
  const here = process.argv[1] ?? ''
  __plumbModuleUrl = pathToFileURL(here).href
  const run = (): Promise<number> => main(process.argv.slice(2))
  if (!withOps) return void run().then(exitNow)
  // the ops bundle in the heap was loaded where the build ran: tell it where it is now
  void ops()
    .then((o) => o.relocate(pathToFileURL(join(dirname(here), 'plumb-ops.cjs')).href))
    .then(run)
    .then(exitNow)
})

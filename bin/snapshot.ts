// The V8 start-up snapshot's entry (dist/plumb-snapshot.cjs, made into dist/plumb.blob by the
// build with `node --build-snapshot`): every command module is loaded and initialised here, at
// build time, and the paths every run takes (argument parsing, help, usage errors) are run once
// so that their compiled code is in the snapshot too. A run that starts from it (the `plumb`
// launcher, bin/plumb.sh) begins with the CLI in the heap. What depends on the run is read in
// the deserialised main, never here: argv, the environment, stdout, where the package is. The
// two native bindings (netlink's, our setns addon) cannot be in a snapshot: nothing here may
// load them (a failed load is remembered), and both load on first use, after it.

import { startupSnapshot } from 'node:v8'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadCommands, main } from '../lib/cli/index.js'

// The bundle's import.meta.url (scripts/bundle.mjs): the package root, node_modules and the
// addon are found from it. The build runs this from dist/; a run sets it to where it started.
declare let __plumbModuleUrl: string

const quiet = { out: () => undefined, err: () => undefined }
// Paths that touch neither the kernel nor the addon: --version, help texts, usage errors, and
// specs refused by validation before the guest is looked up.
const training = [
  ['--version'],
  ['--help'],
  ['attach-veth', '--help'],
  ['ls', '--help'],
  ['attach-veth'],
  ['attach-veth', 'pid:1', 'pt-train0', '300.1.1.1/24'],
  ['attach-veth', 'pid:1', 'pt-train0', '198.18.0.2/24@198.18.0.1', '2001:db8::2/64', '--mac', 'seed:train', '--mtu', '99999'],
  ['macvlan', 'pid:1', 'pt-train0', '198.18.0.2', '--json'],
  ['p2p-link', 'pid:1', 'pid:1', '--ip-a', '198.18.0.0/33'],
  ['ovs-port', 'pid:1', 'pt-train0', '198.18.0.2/24', '--tag', '5000'],
  ['set-ip', 'pid:1', 'eth1'],
]

async function train(): Promise<void> {
  __plumbModuleUrl = pathToFileURL(join(process.cwd(), 'plumb-snapshot.cjs')).href
  await loadCommands([])
  for (const argv of training) await main(argv, quiet, {})
  __plumbModuleUrl = ''
}
// Done while the builder drains its event loop, before it writes the heap.
void train()

startupSnapshot.setDeserializeMainFunction(() => {
  // argv[1] is dist/plumb.cjs: the launcher names it so that this run knows where it is installed.
  __plumbModuleUrl = pathToFileURL(process.argv[1] ?? '').href
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code
  })
})

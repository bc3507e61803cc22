// What the CLI's commands call below the command line: every op, lab and watch entry point they
// run, in one module. A command loads it (common.ts's ops()) only in its handler, after yargs has
// parsed and validated, so --help, --version, completion and usage errors never load the ops,
// netlink or the YAML parser. The CLI bundle keeps this module in a file of its own
// (dist/plumb-ops.cjs, scripts/bundle.mjs), loaded from its code cache, or already loaded in the
// start-up snapshot the launcher picks for an op (dist/plumb-ops.blob: bin/snapshot.ts).

export { attachVeth } from '../ops/attach-veth.js'
export { detach } from '../ops/detach.js'
export { dhcp } from '../ops/dhcp.js'
export { doctor, formatDoctor } from '../ops/doctor.js'
export { execIn } from '../ops/exec.js'
export { expose } from '../ops/expose.js'
export { gc } from '../ops/gc.js'
export { isolate } from '../ops/isolate.js'
export { formatLs, ls } from '../ops/ls.js'
export { macvlan } from '../ops/macvlan.js'
export { masquerade } from '../ops/masquerade.js'
export { moveDev } from '../ops/move-dev.js'
export { names } from '../ops/names.js'
export { ovsPort } from '../ops/ovs-port.js'
export { p2pLink } from '../ops/p2p-link.js'
export { pipework } from '../ops/pipework.js'
export { setIp } from '../ops/set-ip.js'
export { sysctl } from '../ops/sysctl.js'
export { vlan } from '../ops/vlan.js'
export { vxlan } from '../ops/vxlan.js'
export { waitFor, waitScript } from '../ops/wait.js'
export { cniInstall } from '../cni/install.js'
export { ReplayError, replay } from '../watch/replay.js'
export { watch } from '../watch/watch.js'

/**
 * Lab files, with the YAML parser (a third of the ops): loaded on a lab command's first call, so
 * the bundle does not initialise them for every other command (esbuild keeps a module reached
 * only through import() uninitialised until then).
 */
export const lab = (): Promise<typeof import('../lab/index.js')> => import('../lab/index.js')

export { relocate } from './relocate.js'

// Writes V8's code cache for a bundle (argv[2]) to argv[2].cache (for the CLI, the ops and lab
// bundles its commands load too: dist/plumb-ops.cjs.cache, dist/plumb-lab.cjs.cache). The cache holds the functions
// compiled so far, so the bundle first runs a few commands that change nothing: for the CLI
// (dist/plumb-cli.cjs) help texts, a usage error, and a --dry-run attach-veth planned against
// this process's own netns (and ls for the snapshot: below); for the CNI plugin (dist/plumb-cni.cjs) VERSION, configs it refuses,
// an ADD whose netns does not exist, a DEL of an attachment that does not exist, and the same
// --dry-run attach through the library call an ADD makes. The common
// paths then start compiled. An eager (--no-lazy) cache of everything was measured: 1.8 MB that
// takes ~23 ms to deserialise, against ~8 ms for this one. Training is best-effort: a command
// that fails here still leaves what it compiled in the cache.
'use strict'
const { mkdirSync, openSync, readFileSync, renameSync, writeFileSync } = require('node:fs')
const { createRequire, wrap } = require('node:module')
const { dirname, resolve } = require('node:path')
const { Script } = require('node:vm')

const file = resolve(process.argv[2])
const script = new Script(wrap(readFileSync(file, 'latin1')), { filename: file }) // ASCII: as lib/cli/bundle.ts reads it
const mod = { exports: {} }
script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file))
const { main, bufferIo, cniMain, attachVeth, loadedBundles, codeCacheFile } = mod.exports

const self = `pid:${process.pid}`
const cliRuns = [
  ['--version'],
  ['--help'],
  ['attach-veth', '--help'],
  ['attach-veth', self, 'pt-train0', '300.1.1.1/24'],
  ['attach-veth', '--dry-run', '--allow-host', self, 'pt-train0', '198.18.0.2/24@198.18.0.1', '--route', '198.19.0.0/16'],
  ['attach-veth', '--dry-run', '--json', '--allow-host', self, 'pt-train0', '198.18.0.2/24', '2001:db8::2/64', '--mac', 'seed:train'],
  ['set-ip', '--dry-run', '--allow-host', self, 'lo', '198.18.0.3/32'],
  // the lab bundle (dist/plumb-lab.cjs) and its YAML parser: a lab file read and drawn, nothing run
  ['lab', 'graph', resolve(__dirname, '../recipes/labs/p2p.yml')],
]
// For the start-up snapshot's cache (run under its V8 flags) ls too, which reads only (the host's
// netns, Docker, OVS, plumb's records; without root or an engine it stops early, and trains what
// it ran): the snapshot keeps that bytecode in its heap (lib/snapshot.ts's --no-flush-bytecode),
// while on the code-cache path every op would deserialise it (measured: no gain there).
const underFlags = !cniMain && codeCacheFile(file) !== `${file}.cache`
if (underFlags) cliRuns.push(['ls'], ['ls', '--json'])
// Real ops too where scripts/bundle.mjs runs this in a mount namespace of its own with plumb's run
// dir and /run/netns on a tmpfs (PLUMB_TRAIN_REAL), before the runs above: in a throwaway netns
// this process enters for them, which is their host (its links, its firewall; plumb's process-wide
// host handle is opened there and stays there: the dry runs above plan against it), with guests
// and a "NIC" of their own; then back to the netns it started in for the rest. No OVS: its switch
// is the host's, whatever the netns; so the Linux bridge is made first (as a user's usually is
// already there), and nothing the runs do asks OVS (a bridge that is not in the kernel would be
// asked about, and the training would depend on whether OVS runs where plumb is built).
const realRuns = underFlags && process.env.PLUMB_TRAIN_REAL === '1' ? [
  ['attach-veth', 'netns:pt-train1', 'pt-train0', '198.18.0.2/24@198.18.0.1'],
  ['macvlan', 'netns:pt-train2', 'pt-train-nic', '198.18.1.2/24'],
  ['p2p-link', 'netns:pt-train1', 'netns:pt-train2', '--ip-a', '198.18.2.0/31', '--ip-b', '198.18.2.1/31'],
  ['ls'],
  ['detach', 'netns:pt-train1', '--all'],
  ['detach', 'netns:pt-train2', '--all'],
] : []

// The CNI plugin's under the same flags (what its start-up snapshot holds): a runtime's ADD and DEL
// of one container, its addresses from an IPAM plugin (most configs delegate them: a stand-in
// script here, which answers VERSION, ADD and DEL as host-local does), then from the runtime's
// `ips` capability.
const cniUnderFlags = !!cniMain && codeCacheFile(file) !== `${file}.cache`
const TRAIN_IPAM_DIR = '/run/plumb/train-ipam'
const TRAIN_IPAM = [
  '#!/bin/sh',
  'cat >/dev/null',
  'case $CNI_COMMAND in',
  `VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["0.3.1","0.4.0","1.0.0","1.1.0"]}' ;;`,
  `ADD) echo '{"cniVersion":"1.0.0","ips":[{"address":"198.18.3.2/24","gateway":"198.18.3.1"}],"routes":[{"dst":"0.0.0.0/0"}]}' ;;`,
  'esac',
  '',
].join('\n')
const trainConf = (extra) => JSON.stringify({ cniVersion: '1.0.0', name: 'pt-train', type: 'plumb', op: 'attach-veth', bridge: 'pt-train0', dataDir: '/run/plumb/train-cni', ...extra })
const realCni = cniUnderFlags && process.env.PLUMB_TRAIN_REAL === '1'
  ? [trainConf({ ipam: { type: 'pt-train-ipam' } }), trainConf({ runtimeConfig: { ips: ['198.18.3.2/24'] } })].flatMap((conf) =>
      ['ADD', 'DEL'].map((command) => [{ CNI_COMMAND: command, CNI_CONTAINERID: 'pt-train', CNI_NETNS: '/run/netns/pt-train1', CNI_IFNAME: 'eth0', CNI_PATH: TRAIN_IPAM_DIR }, conf]),
    )
  : []

async function trainReal() {
  const addon = require(resolve(__dirname, '../native/build/Release/plumb_setns.node'))
  const { execFileSync } = require('node:child_process')
  const home = openSync('/proc/thread-self/ns/net', 'r')
  addon.enterNetns(addon.newNetns())
  for (const args of [['link', 'set', 'lo', 'up'], ['link', 'add', 'pt-train0', 'up', 'type', 'bridge'], ['netns', 'add', 'pt-train1'], ['netns', 'add', 'pt-train2'], ['link', 'add', 'pt-train-nic', 'up', 'type', 'veth', 'peer', 'name', 'pt-train-peer']]) execFileSync('ip', args)
  for (const argv of realRuns) {
    const io = bufferIo()
    if ((await main(argv, io)) !== 0) throw new Error(`${argv.join(' ')}: ${io.stderr.join('')}`)
  }
  if (realCni.length) {
    mkdirSync(TRAIN_IPAM_DIR, { recursive: true })
    writeFileSync(`${TRAIN_IPAM_DIR}/pt-train-ipam`, TRAIN_IPAM, { mode: 0o755 })
  }
  for (const [env, conf] of realCni) {
    const said = []
    const io = { out: (t) => said.push(t), err: (t) => said.push(t) }
    if ((await cniMain(env, () => conf, io)) !== 0) throw new Error(`CNI ${env.CNI_COMMAND}: ${said.join('')}`)
  }
  addon.enterNetns(home)
}

// No IPAM and a data dir that does not exist: nothing is spawned, written or removed.
const conf = (extra) => JSON.stringify({ cniVersion: '1.0.0', name: 'pt-train', type: 'plumb', op: 'attach-veth', bridge: 'pt-train0', dataDir: `/nonexistent/plumb-train-${process.pid}`, ...extra })
const cniEnv = (command) => ({ CNI_COMMAND: command, CNI_CONTAINERID: 'pt-train', CNI_NETNS: `/nonexistent/pt-train-${process.pid}`, CNI_IFNAME: 'eth0', CNI_PATH: '/nonexistent' })
const cniRuns = [
  [cniEnv('VERSION'), ''],
  [cniEnv('ADD'), '{'],
  [cniEnv('ADD'), conf({ op: 'bogus' })],
  [cniEnv('ADD'), conf({ mtu: 1400, runtimeConfig: { ips: ['198.18.0.2/24'], mac: '02:00:00:00:00:01' } })],
  [{ ...cniEnv('DEL'), CNI_NETNS: '' }, conf({})],
]
const quiet = { out: () => undefined, err: () => undefined }

async function train() {
  if (cniMain) {
    if (realCni.length) await trainReal()
    for (const [env, stdin] of cniRuns) await cniMain(env, () => stdin, quiet).catch(() => undefined)
    // What an ADD runs after IPAM, planned against this process's own netns: changes nothing.
    const tags = { cni: 'pt-train', cniif: 'eth0' }
    await attachVeth({ guest: self, bridge: 'pt-train0', ips: ['198.18.0.2/24@198.18.0.1'], ifname: 'eth0', tags, dryRun: true, allowHost: true, firewall: false }).catch(() => undefined)
  }
  else {
    if (realRuns.length) await trainReal()
    for (const argv of cliRuns) await main(argv, bufferIo()).catch(() => undefined)
  }
  // The CLI's ops bundle (dist/plumb-ops.cjs), which the dry runs loaded, has its cache written
  // too. Run under the start-up snapshot's V8 flags (scripts/bundle.mjs), only the ops bundle's,
  // named for them (codeCacheFile): the snapshot holds the command line itself. The CNI bundle's
  // is written under both: the CNI snapshot (bin/cni-snapshot.ts) loads it from the second.
  const ops = [...(loadedBundles ?? new Map())]
  const loaded = (name) => ops.some(([f]) => f.endsWith(`/${name}`))
  if (!cniMain && !(loaded('plumb-ops.cjs') && loaded('plumb-lab.cjs'))) throw new Error(`the training runs loaded ${ops.map(([f]) => f).join(', ') || 'no bundle'}, not the ops and lab bundles`)
  for (const [f, s] of underFlags ? ops : [[file, script], ...ops]) {
    const out = codeCacheFile(f)
    writeFileSync(`${out}.tmp`, s.createCachedData())
    renameSync(`${out}.tmp`, out)
  }
}
train().then(
  () => process.exit(0), // sockets or timers a dry run left open must not hold the build
  (err) => {
    console.error(`code cache: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  },
)

// The executable (dist/plumb.cjs) and its start-up: the build's code cache is one V8 accepts,
// the CLI still works without it or with a bad one, and the heavy node modules stay off the
// start-up path (the one-shot CLI is dominated by start-up: bench/README.md).

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { execa } from 'execa'
import { execFileSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import Module, { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Script } from 'node:vm'
import { packageRoot, packageVersion } from '../../lib/paths.js'
import { snapshotCheck } from '../../lib/ops/doctor.js'
import { SNAPSHOT_BLOB, SNAPSHOT_CNI_BLOB, SNAPSHOT_NODE_FLAGS, SNAPSHOT_OPS_BLOB, SNAPSHOT_STAMP, SNAPSHOT_TRAINED_DRY, SNAPSHOT_TRAINED_REAL, snapshotVerdict } from '../../lib/snapshot.js'
import { PLUMB_BIN } from '../helpers/cli.js'
import { LAUNCHER_GLIBC_TUNABLES } from '../../lib/cli/launcher-env.js'

const dist = join(packageRoot(), 'dist')
const bundle = join(dist, 'plumb-cli.cjs')

const opsBundle = join(dist, 'plumb-ops.cjs')
const labBundle = join(dist, 'plumb-lab.cjs')
/** The source files esbuild put in a bundle (the build's record: the minified bundles do not name them). */
const bundleInputs = (file: string): string[] => (JSON.parse(readFileSync(join(dist, 'bundles.json'), 'utf8')) as Record<string, string[]>)[file] ?? []
const has = (inputs: string[], prefix: string): boolean => inputs.some((f) => f.startsWith(prefix) || f.includes(`/${prefix}`))

test('the build wrote code caches that V8 accepts for the command line and for its ops', (t) => {
  for (const file of [bundle, opsBundle]) {
    const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData: readFileSync(`${file}.cache`) })
    t.false(script.cachedDataRejected, `${file}: a rejected cache means every run compiles it again`)
  }
})

test('the command line (bundle and snapshot) holds no op: --help, --version and usage errors never load them', async (t) => {
  const cli = bundleInputs('plumb-cli.cjs')
  const ops = bundleInputs('plumb-ops.cjs')
  const lab = bundleInputs('plumb-lab.cjs')
  t.true(has(ops, 'lib/ops/attach-veth.ts') && has(ops, 'node_modules/netlink/') && has(lab, 'lib/lab/') && has(lab, 'node_modules/yaml/'), 'the ops and lab bundles have them (the checks below can fail)')
  for (const inside of ['lib/ops/', 'lib/lab/', 'lib/guest/', 'node_modules/netlink/', 'node_modules/yaml/']) t.false(has(cli, inside), `the CLI bundle carries ${inside}`)
  t.false(has(ops, 'node_modules/yargs/'), 'the ops bundle carries yargs')
  // lab files and their YAML parser are a bundle of their own: the ops blob every op starts from holds neither
  for (const inside of ['lib/lab/', 'node_modules/yaml/']) t.false(has(ops, inside), `the ops bundle carries ${inside}`)
  // ... which takes the rest from the ops bundle: one copy of each module
  for (const inside of ['lib/ops/', 'lib/kernel/', 'lib/guest/', 'node_modules/netlink/']) t.false(has(lab, inside), `the lab bundle has its own copy of ${inside}`)
  // one error class, one configuration, one bundle loader: the ops and lab bundles take the command line's
  for (const shared of ['lib/errors.ts', 'lib/config.ts', 'lib/paths.ts', 'lib/cli/bundle.ts']) {
    t.true(has(cli, shared))
    t.false(has(ops, shared), `the ops bundle has its own copy of ${shared}`)
    t.false(has(lab, shared), `the lab bundle has its own copy of ${shared}`)
  }
  // A copy without the ops bundle answers everything that runs no handler, from the snapshot and from the code cache.
  const copy = mkdtempSync(join(dist, 'pt-launch-'))
  t.teardown(() => rmSync(copy, { recursive: true, force: true }))
  for (const f of ['plumb', 'plumb.cjs', 'plumb-cli.cjs', 'plumb-cli.cjs.cache', SNAPSHOT_BLOB, SNAPSHOT_STAMP]) copyFileSync(join(dist, f), join(copy, f))
  execFileSync('touch', ['-r', process.execPath, join(copy, SNAPSHOT_STAMP)])
  const node = fakeNode(t)
  const runs: Array<[string[], number]> = [[['--version'], 0], [['--help'], 0], [['attach-veth', '--help'], 0], [['attach-veth', 'pid:1'], 2], [['atach-veth'], 2]]
  for (const [argv, code] of runs) {
    const r = await execa(join(copy, 'plumb'), argv, { env: node.env, extendEnv: false, reject: false })
    t.is(r.exitCode, code, `${argv.join(' ')}: ${r.stderr}`)
    const cached = await execa(process.execPath, [join(copy, 'plumb.cjs'), ...argv], { reject: false })
    t.is(cached.exitCode, r.exitCode, `${argv.join(' ')} from the code cache: ${cached.stderr}`)
  }
  t.true(node.argvs().every((a) => a.includes('--snapshot-blob')), 'the launcher ran them from the snapshot')
  // and an op needs it
  const op = await execa(process.execPath, [join(copy, 'plumb.cjs'), 'set-ip', 'pid:1', 'eth1', '198.18.0.2/24', '--json'], { reject: false })
  t.not(op.exitCode, 0)
  t.regex(op.stderr, /plumb-ops\.cjs/)
})

test('the CLI runs without the code cache, and with a corrupt one', async (t) => {
  // Copies of the two files, inside dist/ so node_modules resolve: one with no cache beside the
  // bundle, one with garbage where the cache goes.
  const launch = async (cache: string | undefined, argv: string[]) => {
    const dir = mkdtempSync(join(dist, 'pt-launch-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    copyFileSync(PLUMB_BIN, join(dir, 'plumb.cjs'))
    copyFileSync(bundle, join(dir, 'plumb-cli.cjs'))
    if (cache !== undefined) writeFileSync(join(dir, 'plumb-cli.cjs.cache'), cache)
    return execa(process.execPath, [join(dir, 'plumb.cjs'), ...argv], { reject: false })
  }
  const without = await launch(undefined, ['--version'])
  t.is(without.exitCode, 0, without.stderr)
  t.is(without.stdout.trim(), packageVersion())
  const corrupt = await launch('not a code cache', ['attach-veth', '--help'])
  t.is(corrupt.exitCode, 0, corrupt.stderr)
  t.regex(corrupt.stdout, /plumb attach-veth <guest> <bridge>/)
})

/** A preload (`node -r HOOK`) that writes the modules node loaded, as they stand at exit; `loaded()` reads them. */
function moduleHook(t: ExecutionContext): { hook: string; loaded: () => string[] } {
  const dir = mkdtempSync(join(dist, 'pt-launch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'modules.txt')
  const hook = join(dir, 'hook.cjs')
  writeFileSync(hook, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, process.moduleLoadList.join('\\n')))`)
  return { hook, loaded: () => readFileSync(out, 'utf8').split('\n') }
}

test('start-up loads neither crypto, assert, fs/promises, child_process, net nor tty (each costs ms on every run; net and tty come with process.stdout)', async (t) => {
  const { hook, loaded: read } = moduleHook(t)
  for (const argv of [['--version'], ['attach-veth', '--help'], ['set-ip', 'pid:1', 'eth1', '300.1.1.1/24']]) {
    await execa(process.execPath, ['-r', hook, PLUMB_BIN, ...argv], { reject: false })
    const loaded = read()
    t.true(loaded.includes('NativeModule vm'), 'the hook saw the launcher run') // a check that can fail
    for (const mod of ['crypto', 'assert', 'fs/promises', 'child_process', 'net', 'tty']) t.false(loaded.includes(`NativeModule ${mod}`), `${argv.join(' ')} loaded node:${mod}`)
  }
})

test('the ops blob holds node:net for the engine and OVSDB clients, but not what a listening server pulls in (cluster, child_process, dgram)', async (t) => {
  const { hook, loaded: read } = moduleHook(t)
  // --version from the ops blob: what its heap holds, nothing an op loads on the way
  const r = await execa(process.execPath, [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', join(dist, SNAPSHOT_OPS_BLOB), '-r', hook, join(dist, 'plumb.cjs'), '--version'], { reject: false })
  t.is(r.exitCode, 0, r.stderr)
  const loaded = read()
  t.true(loaded.includes('NativeModule net'), 'the round trip the build made is in the heap')
  for (const mod of ['cluster', 'child_process', 'dgram']) t.false(loaded.includes(`NativeModule ${mod}`), `the ops blob holds node:${mod}`)
})

test('the bundle exports main() for the launcher', async (t) => {
  const mod = { exports: {} as { main?: unknown; bufferIo?: unknown } }
  // Loading it runs its module code only: nothing is parsed or executed until main() is called.
  new Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle }).runInThisContext().call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, dirname(bundle))
  t.is(typeof mod.exports.main, 'function')
  t.is(typeof mod.exports.bufferIo, 'function')
})

const cniBundle = join(dist, 'plumb-cni.cjs')

test("the CNI plugin's bundle has a code cache V8 accepts, and no yargs or CLI commands inside", (t) => {
  const text = readFileSync(cniBundle, 'utf8')
  const script = new Script(Module.wrap(text), { filename: cniBundle, cachedData: readFileSync(`${cniBundle}.cache`) })
  t.false(script.cachedDataRejected)
  t.true(has(bundleInputs('plumb-cli.cjs'), 'node_modules/yargs/'), 'the CLI bundle does carry yargs (the check below can fail)')
  const cni = bundleInputs('plumb-cni.cjs')
  t.false(has(cni, 'node_modules/yargs/'), 'a runtime calls the plugin for every container: it must not load the CLI')
  t.false(has(cni, 'lib/cli/commands/'))
})

test('with CNI_COMMAND set the executable answers as a CNI plugin from its own bundle, without crypto, assert, child_process, net or tty at start-up', async (t) => {
  const dir = mkdtempSync(join(dist, 'pt-launch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'modules.txt')
  const hook = join(dir, 'hook.cjs')
  // Which bundle ran: the launcher reads it with readFileSync; record the paths read.
  writeFileSync(
    hook,
    `const fs = require('node:fs'); const read = fs.readFileSync; const seen = []
fs.readFileSync = function (p, ...rest) { seen.push(String(p)); return read.call(this, p, ...rest) }
process.on('exit', () => fs.writeFileSync(${JSON.stringify(out)}, [...process.moduleLoadList, ...seen].join('\\n')))`,
  )
  const r = await execa(process.execPath, ['-r', hook, PLUMB_BIN], { env: { CNI_COMMAND: 'VERSION' }, reject: false })
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), { cniVersion: '1.1.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] })
  const loaded = readFileSync(out, 'utf8').split('\n')
  t.true(loaded.includes(cniBundle))
  t.false(loaded.includes(bundle), 'the CLI bundle was not read')
  for (const mod of ['crypto', 'assert', 'child_process', 'net', 'tty']) t.false(loaded.includes(`NativeModule ${mod}`), `VERSION loaded node:${mod}`)
  // A refused config: the spec's error object on stdout, the reason on stderr too, exit 1.
  const bad = await execa(process.execPath, [PLUMB_BIN], { env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/nonexistent', CNI_IFNAME: 'eth0', CNI_PATH: '/nonexistent' }, input: '{"cniVersion":"0.4.0","name":"n","op":"nope"}', reject: false })
  t.is(bad.exitCode, 1)
  t.deepEqual(JSON.parse(bad.stdout), { cniVersion: '0.4.0', code: 7, msg: 'unknown op "nope"', details: "plumb's CNI ops: attach-veth, ovs-port, macvlan, vlan, move-dev" })
  t.regex(bad.stderr, /^plumb: CNI ADD failed: unknown op "nope"/)
})

// The `plumb` command (dist/plumb, native/launcher.c) and the start-up snapshot it offers node. Which
// path a run took is read from node's own argv, through a stand-in `node` first on PATH that logs
// its arguments and execs the real one (with the real one's mtime: the launcher compares it).
const launcher = join(dist, 'plumb')

/** A node on PATH that logs each start's argv, and the GLIBC_TUNABLES it was given ('-' for none), then runs the real one. */
function fakeNode(t: ExecutionContext): { dir: string; log: string; env: NodeJS.ProcessEnv; argvs: () => string[][]; tunables: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'pt-node-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const log = join(dir, 'argv.log')
  const envLog = join(dir, 'env.log')
  writeFileSync(join(dir, 'node'), `#!/bin/sh\nprintf '%s\\n' "$*" >>${log}\nprintf '%s\\n' "\${GLIBC_TUNABLES--}" >>${envLog}\nexec ${process.execPath} "$@"\n`, { mode: 0o755 })
  execFileSync('touch', ['-r', process.execPath, join(dir, 'node')])
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` }
  delete env.NODE_OPTIONS
  delete env.GLIBC_TUNABLES
  const lines = (f: string): string[] => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : [])
  return { dir, log, env, argvs: () => lines(log).map((l) => l.split(' ')), tunables: () => lines(envLog) }
}

test('the build wrote a start-up snapshot and vouched for it; plumb starts node from it', async (t) => {
  t.true(existsSync(join(dist, SNAPSHOT_BLOB)), 'npm run build makes dist/plumb.blob')
  t.true(existsSync(join(dist, SNAPSHOT_OPS_BLOB)), 'and dist/plumb-ops.blob')
  t.true(existsSync(join(dist, SNAPSHOT_STAMP)), 'and the stamp, once a run from it worked')
  const node = fakeNode(t)
  const version = await execa(launcher, ['--version'], { env: node.env, extendEnv: false, reject: false })
  t.is(version.exitCode, 0, version.stderr)
  t.is(version.stdout.trim(), packageVersion())
  const [argv] = node.argvs()
  t.deepEqual(argv, [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', join(dist, SNAPSHOT_BLOB), join(dist, 'plumb.cjs'), '--version'])
  // the ops a run from the snapshot loads come from their own code cache (V8 would reject the
  // code-cache path's, made without the snapshot's flags), and doctor, itself run from it, says so
  const doctor = await execa(launcher, ['doctor', '--json'], { env: node.env, extendEnv: false, reject: false })
  const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks
  // an op (doctor is one) starts from the blob that holds the ops
  t.deepEqual(node.argvs()[1], [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', join(dist, SNAPSHOT_OPS_BLOB), join(dist, 'plumb.cjs'), 'doctor', '--json'])
  // how the build trained the ops it holds: as root (the suite's case), on real ops, whether or not OVS runs
  const trained = readFileSync(join(dist, SNAPSHOT_STAMP), 'utf8').split('\n')[1]
  t.is(trained, process.getuid?.() === 0 ? SNAPSHOT_TRAINED_REAL : `${SNAPSHOT_TRAINED_DRY}: the build did not run as root`)
  t.like(checks.find((c) => c.name === 'CLI start-up snapshot'), { ok: true, detail: `in use: ${join(dist, SNAPSHOT_BLOB)} vouched for ${join(node.dir, 'node')} on this CPU; ops start from ${SNAPSHOT_OPS_BLOB} (${trained}); CNI calls from ${SNAPSHOT_CNI_BLOB}` })
  t.like(checks.find((c) => c.name === 'CLI code cache'), { ok: true, detail: `${opsBundle}.snapshot.cache, ${labBundle}.snapshot.cache accepted: commands start without compiling the CLI` })
})

test("each blob keeps node's code cache only for the built-ins its heap lacks: a run from it, a spawn's included, compiles none without it", async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_DEBUG_NATIVE: 'CODE_CACHE' }
  delete env.NODE_OPTIONS
  // a run under c8 (the suite's) collects coverage, for which node loads its source-map cache:
  // a module of node's own no user's run loads, so no blob keeps it. Empty, not deleted: node
  // hands its own NODE_V8_COVERAGE to a child whose env does not name it.
  env.NODE_V8_COVERAGE = ''
  /** How many built-ins' caches the blob the run started from holds, and what the run compiled without one. */
  const compiled = (stderr: string): { held: number; without: string[] } => ({
    held: Number(/snapshot contains (\d+) code cache/.exec(stderr)?.[1] ?? -1),
    without: [...stderr.matchAll(/Compiling (\S+) without code cache/g)].map((m) => m[1]!),
  })
  // node's whole cache is ~320 built-ins; the heap holds what plumb loads at start
  const version = await execa(launcher, ['--version'], { env, extendEnv: false, reject: false })
  t.is(version.exitCode, 0, version.stderr)
  const cli = compiled(version.stderr)
  t.true(cli.held >= 0 && cli.held < 20, `the command line's blob holds ${cli.held}`)
  t.deepEqual(cli.without, [])
  const cni = await execa(launcher, [], { env: { ...env, CNI_COMMAND: 'VERSION' }, extendEnv: false, reject: false, input: '' })
  t.is(cni.exitCode, 0, cni.stderr)
  const cniCompiled = compiled(cni.stderr)
  t.true(cniCompiled.held >= 0 && cniCompiled.held < 20, `the CNI blob holds ${cniCompiled.held}`)
  t.deepEqual(cniCompiled.without, [])
  // node builds its stderr stream when it first destroys a socket (ls asks Docker and OVS): with fd
  // 2 on a file, a module no heap holds
  const dir = mkdtempSync(join(tmpdir(), 'pt-cc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lsRun = await execa('sh', ['-c', '"$0" ls --json 2>"$1"', launcher, join(dir, 'stderr')], { env, extendEnv: false, reject: false })
  t.is(lsRun.exitCode, 0, lsRun.stderr)
  const lsErr = readFileSync(join(dir, 'stderr'), 'utf8')
  t.regex(lsErr, /Compiling internal\/fs\/sync_write_stream with code cache/)
  t.deepEqual(compiled(lsErr).without, [])
  if (process.getuid?.() !== 0) return
  // a spawn from the ops blob (plumb exec): node:child_process is not in its heap, so it compiles
  // there, from the cache the blob kept for it
  const ns = `pt-cc${process.pid}`
  execFileSync('ip', ['netns', 'add', ns])
  t.teardown(() => void execFileSync('ip', ['netns', 'del', ns]))
  const r = await execa(launcher, ['exec', `netns:${ns}`, '--', 'true'], { env, extendEnv: false, reject: false })
  t.is(r.exitCode, 0, r.stderr)
  const ops = compiled(r.stderr)
  t.true(ops.held > 0 && ops.held < 20, `the ops blob holds ${ops.held}`)
  t.regex(r.stderr, /Compiling child_process with code cache/)
  t.deepEqual(ops.without, [])
})

test('from the snapshot, argv, the environment and the exit codes are the run\'s own', async (t) => {
  const node = fakeNode(t)
  const help = await execa(launcher, ['attach-veth', '--help'], { env: node.env, extendEnv: false, reject: false })
  t.is(help.exitCode, 0, help.stderr)
  t.regex(help.stdout, /plumb attach-veth <guest> <bridge>/)
  const usage = await execa(launcher, ['attach-veth', 'pid:1', 'pt-x0', '300.1.1.1/24', '--json'], { env: node.env, extendEnv: false, reject: false })
  t.is(usage.exitCode, 2)
  t.is(JSON.parse(usage.stderr).error.code, 'USAGE')
  // DOCKER_HOST is read when the command runs, not when the snapshot was made
  const sock = `unix:///nonexistent/pt-${process.pid}.sock`
  const missing = await execa(launcher, ['attach-veth', `pt-nosuch-${process.pid}`, 'pt-x0', '198.18.0.2/24'], { env: { ...node.env, DOCKER_HOST: sock }, extendEnv: false, reject: false })
  t.is(missing.exitCode, 3)
  t.true(missing.stderr.includes(sock), missing.stderr)
  // help from the command line's blob; the usage error and the op from the one with the ops (an
  // op's argv holds no --help): the environment is still the run's own
  t.deepEqual(
    node.argvs().map((a) => a[a.indexOf('--snapshot-blob') + 1]),
    [join(dist, SNAPSHOT_BLOB), join(dist, SNAPSHOT_OPS_BLOB), join(dist, SNAPSHOT_OPS_BLOB)],
  )
  // the watch daemon from the code cache, with V8's compilers (a snapshot run is --jitless); its
  // help from the command line's blob, and a guest named "watch" is no daemon
  const daemon = await execa(launcher, ['--json', 'watch', '--bogus'], { env: node.env, extendEnv: false, reject: false })
  t.is(daemon.exitCode, 2)
  const named = await execa(launcher, ['attach-veth', 'watch', 'pt-x0', '300.1.1.1/24'], { env: node.env, extendEnv: false, reject: false })
  t.is(named.exitCode, 2)
  t.deepEqual(node.argvs().slice(3), [
    [join(dist, 'plumb.cjs'), '--json', 'watch', '--bogus'],
    [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', join(dist, SNAPSHOT_OPS_BLOB), join(dist, 'plumb.cjs'), 'attach-veth', 'watch', 'pt-x0', '300.1.1.1/24'],
  ])
})

test('a CNI call starts from the CNI plugin\'s own blob, the node the CNI launcher names (PLUMB_NODE) or the one on PATH; without that blob, from the code cache', async (t) => {
  t.true(existsSync(join(dist, SNAPSHOT_CNI_BLOB)), 'npm run build makes dist/plumb-cni.blob')
  const node = fakeNode(t)
  const version = { cniVersion: '1.1.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] }
  const onPath = await execa(launcher, [], { env: { ...node.env, CNI_COMMAND: 'VERSION' }, extendEnv: false, input: '', reject: false })
  t.is(onPath.exitCode, 0, onPath.stderr)
  t.deepEqual(JSON.parse(onPath.stdout), version)
  // as a runtime starts the launcher `plumb cni install` writes: no node on PATH, PLUMB_NODE names it
  const named = await execa(launcher, [], { env: { CNI_COMMAND: 'VERSION', PATH: '/nonexistent', PLUMB_NODE: join(node.dir, 'node') }, extendEnv: false, input: '', reject: false })
  t.is(named.exitCode, 0, named.stderr)
  t.deepEqual(JSON.parse(named.stdout), version)
  const fromBlob = [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', join(dist, SNAPSHOT_CNI_BLOB), join(dist, 'plumb.cjs')]
  t.deepEqual(node.argvs(), [fromBlob, fromBlob])
  // a PLUMB_NODE that is no program: said, exit 127, nothing run
  const wrong = await execa(launcher, ['--version'], { env: { PATH: '/nonexistent', PLUMB_NODE: '/nonexistent/node' }, extendEnv: false, reject: false })
  t.is(wrong.exitCode, 127)
  t.is(wrong.stderr, 'plumb: PLUMB_NODE=/nonexistent/node is not an executable node')
  // a refused config from the blob: the spec's error object, exit 1, as from the code cache (above)
  const bad = await execa(launcher, [], { env: { ...node.env, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/nonexistent', CNI_IFNAME: 'eth0', CNI_PATH: '/nonexistent' }, extendEnv: false, input: '{"cniVersion":"0.4.0","name":"n","op":"nope"}', reject: false })
  t.is(bad.exitCode, 1)
  t.is(JSON.parse(bad.stdout).code, 7)
  // a copy without it: the code cache, never the command line's blob (which cannot answer a runtime)
  const copy = mkdtempSync(join(dist, 'pt-launch-'))
  t.teardown(() => rmSync(copy, { recursive: true, force: true }))
  for (const f of ['plumb', 'plumb.cjs', 'plumb-cni.cjs', 'plumb-cni.cjs.cache', SNAPSHOT_BLOB, SNAPSHOT_OPS_BLOB, SNAPSHOT_STAMP]) copyFileSync(join(dist, f), join(copy, f))
  execFileSync('touch', ['-r', process.execPath, join(copy, SNAPSHOT_STAMP)])
  const cached = await execa(join(copy, 'plumb'), [], { env: { ...node.env, CNI_COMMAND: 'VERSION' }, extendEnv: false, input: '', reject: false })
  t.is(cached.exitCode, 0, cached.stderr)
  t.deepEqual(JSON.parse(cached.stdout), version)
  t.deepEqual(node.argvs()[3], [join(copy, 'plumb.cjs')])
})

test('an op run from a copy of the package with the ops in its snapshot finds its addon beside the copy, not where the build ran', async (t) => {
  // the copy: its own package.json and dist (stamp times kept), no node_modules, and no native addon at first
  const root = mkdtempSync(join(tmpdir(), 'pt-reloc-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  cpSync(dist, join(root, 'dist'), { recursive: true, preserveTimestamps: true, filter: (src) => !src.includes('/test') && !src.includes('/bench') })
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'plumb', version: packageVersion() }))
  const node = fakeNode(t)
  const ls = (): Promise<{ exitCode?: number; stderr: string }> => execa(join(root, 'dist', 'plumb'), ['ls'], { env: node.env, extendEnv: false, reject: false })
  const without = await ls()
  t.not(without.exitCode, 0, 'the addon is looked for beside the copy, where there is none')
  const addon = join(root, 'native', 'build', 'Release', 'plumb_setns.node')
  t.true(without.stderr.includes(addon), without.stderr)
  // the CNI plugin's blob too: an ADD fails on the copy's missing addon before it changes anything
  const bridge = `pt-rel${process.pid % 100000}`
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'pt-reloc', type: 'plumb', op: 'attach-veth', bridge, dataDir: join(root, 'cni') })
  const add = await execa(join(root, 'dist', 'plumb'), [], { env: { ...node.env, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'pt-reloc', CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'eth0', CNI_PATH: '/nonexistent' }, extendEnv: false, input: conf, reject: false })
  t.is(add.exitCode, 1)
  t.is(JSON.parse(add.stdout).code, 105)
  t.true(add.stderr.includes(addon), add.stderr)
  t.false(existsSync(`/sys/class/net/${bridge}`))
  t.true(node.argvs()[1]?.includes(join(root, 'dist', SNAPSHOT_CNI_BLOB)), 'from the copy\'s CNI blob')
  cpSync(join(packageRoot(), 'native'), join(root, 'native'), { recursive: true })
  const withAddon = await ls()
  t.is(withAddon.exitCode, 0, withAddon.stderr)
  t.true([0, 2].every((i) => node.argvs()[i]?.includes(join(root, 'dist', SNAPSHOT_OPS_BLOB))), 'both from the copy\'s ops blob')
})

test('the launcher finds its package through a symlink (npm\'s bin links), says when there is no node to run, and exits as node does', async (t) => {
  const node = fakeNode(t)
  const bin = mkdtempSync(join(tmpdir(), 'pt-bin-'))
  t.teardown(() => rmSync(bin, { recursive: true, force: true }))
  symlinkSync(launcher, join(bin, 'plumb'))
  const linked = await execa(join(bin, 'plumb'), ['--version'], { env: node.env, extendEnv: false, reject: false })
  t.is(linked.exitCode, 0, linked.stderr)
  t.is(linked.stdout.trim(), packageVersion())
  t.deepEqual(node.argvs()[0], [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', join(dist, SNAPSHOT_BLOB), join(dist, 'plumb.cjs'), '--version'])
  // no node on PATH (an empty PATH is /usr/bin:/bin, as for sh; an empty entry is the current directory)
  const none = await execa(launcher, ['--version'], { env: { PATH: '/nonexistent:/nonexistent/too' }, extendEnv: false, reject: false })
  t.is(none.exitCode, 127)
  t.is(none.stderr, 'plumb: node not found on PATH')
  const here = await execa(launcher, ['--version'], { env: { PATH: '/nonexistent:' }, cwd: node.dir, extendEnv: false, reject: false })
  t.is(here.exitCode, 0, here.stderr)
  t.is(node.argvs().length, 2, 'the node in the current directory ran')
  // a node that is not a program it can start: said, and sh's exit code for it
  const broken = join(bin, 'node')
  writeFileSync(broken, 'not a program', { mode: 0o755 })
  const bad = await execa(launcher, ['--version'], { env: { PATH: bin }, extendEnv: false, reject: false })
  t.is(bad.exitCode, 126)
  t.is(bad.stderr, `plumb: cannot run ${broken}: Exec format error`)
  // node's exit code and signal are the command's (exec, no fork): a usage error is 2
  const usage = await execa(join(bin, 'plumb'), ['atach-veth'], { env: node.env, extendEnv: false, reject: false })
  t.is(usage.exitCode, 2)
})

test('without a snapshot node accepts, plumb runs from the code cache and doctor says why', async (t) => {
  const node = fakeNode(t)
  // NODE_OPTIONS may carry V8 flags, under which node refuses any snapshot (exit 14)
  const opts = await execa(launcher, ['--version'], { env: { ...node.env, NODE_OPTIONS: '--max-old-space-size=200' }, extendEnv: false, reject: false })
  t.is(opts.exitCode, 0, opts.stderr)
  t.deepEqual(node.argvs()[0], [join(dist, 'plumb.cjs'), '--version'])
  // another node binary (here: the same one with another mtime) than the one that built it
  execFileSync('touch', ['-d', '2001-01-01', join(node.dir, 'node')])
  const other = await execa(launcher, ['attach-veth', '--help'], { env: node.env, extendEnv: false, reject: false })
  t.is(other.exitCode, 0, other.stderr)
  t.regex(other.stdout, /plumb attach-veth <guest> <bridge>/)
  t.deepEqual(node.argvs()[1], [join(dist, 'plumb.cjs'), 'attach-veth', '--help'])
  t.deepEqual(snapshotVerdict(dist, join(node.dir, 'node'), node.env), { used: false, why: `${join(node.dir, 'node')} is not the node that built it (another binary or version)` })
  const doctor = await execa(launcher, ['doctor', '--json'], { env: node.env, extendEnv: false, reject: false })
  const check = (JSON.parse(doctor.stdout) as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks.find((c) => c.name === 'CLI start-up snapshot')
  t.false(check?.ok)
  t.regex(check?.detail ?? '', /^not used, commands start from the code cache \(slower\): .* is not the node that built it/)
})

test('a copy without the blob, or whose blob node refuses, still runs; doctor reports V8\'s refusal', async (t) => {
  const copy = mkdtempSync(join(dist, 'pt-launch-'))
  t.teardown(() => rmSync(copy, { recursive: true, force: true }))
  for (const f of ['plumb', 'plumb.cjs', 'plumb-cli.cjs', 'plumb-cli.cjs.cache']) copyFileSync(join(dist, f), join(copy, f))
  const node = fakeNode(t)
  const bare = await execa(join(copy, 'plumb'), ['--version'], { env: node.env, extendEnv: false, reject: false })
  t.is(bare.exitCode, 0, bare.stderr)
  t.deepEqual(node.argvs()[0], [join(copy, 'plumb.cjs'), '--version'])
  t.regex(snapshotVerdict(copy, process.execPath, node.env).why, /^no .*plumb\.blob: the build could not make one/)
  // A blob made under other V8 flags, with a stamp that vouches for it all the same: node refuses it.
  execFileSync(process.execPath, ['--max-lazy', '--snapshot-blob', join(copy, SNAPSHOT_BLOB), '--build-snapshot', join(dist, 'plumb-snapshot.cjs')], { cwd: dist, stdio: 'ignore' })
  copyFileSync(join(dist, SNAPSHOT_STAMP), join(copy, SNAPSHOT_STAMP))
  execFileSync('touch', ['-r', process.execPath, join(copy, SNAPSHOT_STAMP)])
  const refused = await execa(process.execPath, ['--snapshot-blob', join(copy, SNAPSHOT_BLOB), join(copy, 'plumb.cjs'), '--version'], { reject: false })
  t.is(refused.exitCode, 14, 'node exits 14 on a snapshot it refuses (what the stamp is there to avoid)')
  const check = await snapshotCheck(copy)
  t.false(check?.ok)
  t.regex(check?.detail ?? '', /^node refuses it \(exit 14\): Failed to load the startup snapshot/)
})

test("a CA bundle the environment names is not read at node's start (plumb makes no TLS connection) and is handed back to the programs plumb runs", async (t) => {
  // node warns at start-up when it cannot read the bundle: the sign that it tried
  const ca = `/nonexistent/pt-ca-${process.pid}.pem`
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: ca }
  delete env.NODE_OPTIONS
  const bare = await execa(process.execPath, ['-e', '0'], { env, extendEnv: false, reject: false })
  t.regex(bare.stderr, /extra certs/i, 'plain node reads the bundle at start (else this test proves nothing)')
  for (const argv of [['--version'], ['ls', '--json']]) {
    const r = await execa(launcher, argv, { env, extendEnv: false, reject: false })
    t.notRegex(r.stderr, /extra certs/i, `plumb ${argv.join(' ')}: node did not read the bundle`)
  }
  if (process.getuid?.() !== 0) return
  // plumb exec runs its command with the variable as the caller had it
  const ns = `pt-ca${process.pid}`
  execFileSync('ip', ['netns', 'add', ns])
  t.teardown(() => void execFileSync('ip', ['netns', 'del', ns]))
  const r = await execa(launcher, ['exec', `netns:${ns}`, '--', 'sh', '-c', 'printf %s "$NODE_EXTRA_CA_CERTS"'], { env, extendEnv: false, reject: false })
  t.is(r.exitCode, 0, r.stderr)
  t.is(r.stdout, ca)
})

test("a start from a blob gets glibc's malloc tunables, which glibc takes; the programs plumb runs get the caller's GLIBC_TUNABLES back, or none", async (t) => {
  const node = fakeNode(t)
  const version = await execa(launcher, ['--version'], { env: node.env, extendEnv: false, reject: false })
  t.is(version.exitCode, 0, version.stderr)
  const mine = { ...node.env, GLIBC_TUNABLES: 'glibc.malloc.check=0' }
  const theirs = await execa(launcher, ['ls', '--json'], { env: mine, extendEnv: false, reject: false })
  t.is(theirs.exitCode, 0, theirs.stderr)
  // the watch daemon runs from the code cache: nothing to tune for it
  await execa(launcher, ['watch', '--bogus'], { env: node.env, extendEnv: false, reject: false })
  t.deepEqual(node.tunables(), [LAUNCHER_GLIBC_TUNABLES, `${LAUNCHER_GLIBC_TUNABLES}:glibc.malloc.check=0`, '-'])
  // glibc ignores a name it does not know, silently: its loader shows what it took
  const taken = execFileSync(glibcLoader(), ['--list-tunables'], { env: { GLIBC_TUNABLES: LAUNCHER_GLIBC_TUNABLES }, encoding: 'utf8' })
  for (const setting of LAUNCHER_GLIBC_TUNABLES.split(':')) {
    const [name, value] = setting.split('=') as [string, string]
    t.regex(taken, new RegExp(`^${name.replaceAll('.', '\\.')}: 0x${Number(value).toString(16)} `, 'm'), `glibc takes ${setting}`)
  }
  if (process.getuid?.() !== 0) return
  const ns = `pt-gt${process.pid}`
  execFileSync('ip', ['netns', 'add', ns])
  t.teardown(() => void execFileSync('ip', ['netns', 'del', ns]))
  const show = ['exec', `netns:${ns}`, '--', 'sh', '-c', 'printf %s "${GLIBC_TUNABLES-none} ${PLUMB_GLIBC_TUNABLES-none}"']
  const bare = await execa(launcher, show, { env: node.env, extendEnv: false, reject: false })
  t.is(bare.exitCode, 0, bare.stderr)
  t.is(bare.stdout, 'none none')
  const own = await execa(launcher, show, { env: mine, extendEnv: false, reject: false })
  t.is(own.exitCode, 0, own.stderr)
  t.is(own.stdout, 'glibc.malloc.check=0 none')
  t.deepEqual(node.tunables().slice(3), [LAUNCHER_GLIBC_TUNABLES, `${LAUNCHER_GLIBC_TUNABLES}:glibc.malloc.check=0`])
})

/** glibc's dynamic loader: the one mapped into this node. */
function glibcLoader(): string {
  const loader = /\s(\/\S*\/ld-linux[^/\s]*\.so[.\d]*)$/m.exec(readFileSync('/proc/self/maps', 'utf8'))
  if (!loader) throw new Error('no ld-linux mapped into this node (not glibc?)')
  return loader[1]!
}

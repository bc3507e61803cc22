// The executable (dist/plumb.cjs) and its start-up: the build's code cache is one V8 accepts,
// the CLI still works without it or with a bad one, and the heavy node modules stay off the
// start-up path (the one-shot CLI is dominated by start-up: bench/README.md).

import test from 'ava'
import { execa } from 'execa'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import Module, { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Script } from 'node:vm'
import { packageRoot, packageVersion } from '../../lib/paths.js'
import { PLUMB_BIN } from '../helpers/cli.js'

const dist = join(packageRoot(), 'dist')
const bundle = join(dist, 'plumb-cli.cjs')

test('the build wrote a code cache that V8 accepts for the bundle', (t) => {
  const script = new Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData: readFileSync(`${bundle}.cache`) })
  t.false(script.cachedDataRejected, 'a rejected cache means every run compiles 1 MB again')
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

test('start-up loads neither crypto, assert, fs/promises nor child_process (each costs ms on every run)', async (t) => {
  const dir = mkdtempSync(join(dist, 'pt-launch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'modules.txt')
  const hook = join(dir, 'hook.cjs')
  writeFileSync(hook, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, process.moduleLoadList.join('\\n')))`)
  for (const argv of [['--version'], ['attach-veth', '--help'], ['set-ip', 'pid:1', 'eth1', '300.1.1.1/24']]) {
    await execa(process.execPath, ['-r', hook, PLUMB_BIN, ...argv], { reject: false })
    const loaded = readFileSync(out, 'utf8').split('\n')
    t.true(loaded.includes('NativeModule vm'), 'the hook saw the launcher run') // a check that can fail
    for (const mod of ['crypto', 'assert', 'fs/promises', 'child_process']) t.false(loaded.includes(`NativeModule ${mod}`), `${argv.join(' ')} loaded node:${mod}`)
  }
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
  t.true(readFileSync(bundle, 'utf8').includes('node_modules/yargs/'), 'the CLI bundle does carry yargs (the check below can fail)')
  t.false(text.includes('node_modules/yargs/'), 'a runtime calls the plugin for every container: it must not load the CLI')
  t.false(text.includes('lib/cli/commands/'))
})

test('with CNI_COMMAND set the executable answers as a CNI plugin from its own bundle, without crypto, assert or child_process at start-up', async (t) => {
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
  for (const mod of ['crypto', 'assert', 'child_process']) t.false(loaded.includes(`NativeModule ${mod}`), `VERSION loaded node:${mod}`)
  // A refused config: the spec's error object on stdout, the reason on stderr too, exit 1.
  const bad = await execa(process.execPath, [PLUMB_BIN], { env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/nonexistent', CNI_IFNAME: 'eth0', CNI_PATH: '/nonexistent' }, input: '{"cniVersion":"0.4.0","name":"n","op":"nope"}', reject: false })
  t.is(bad.exitCode, 1)
  t.deepEqual(JSON.parse(bad.stdout), { cniVersion: '0.4.0', code: 7, msg: 'unknown op "nope"', details: "plumb's CNI ops: attach-veth, ovs-port, macvlan, vlan, move-dev" })
  t.regex(bad.stderr, /^plumb: CNI ADD failed: unknown op "nope"/)
})

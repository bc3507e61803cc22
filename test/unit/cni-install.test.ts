// `plumb cni install`: the launcher runtimes exec as the `plumb` plugin, written idempotently,
// refused over a file that is not plumb's, removed with --del; --dry-run writes nothing.

import test from 'ava'
import { execa } from 'execa'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/index.js'
import { launcherScript, launcherState } from '../../lib/cni/install.js'

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync('/tmp/pt-cniinst-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'bin')
}

test('install writes an executable launcher that answers VERSION; a rerun says "already"; --del removes it', async (t) => {
  const dir = tmpDir(t)
  const first = await runCli(['cni', 'install', '--dir', dir, '--json'])
  t.is(first.exitCode, 0, first.stderr)
  t.true(first.json.changed)
  t.is(first.json.file, join(dir, 'plumb'))
  t.is(first.json.conflist.plugins[0].type, 'plumb')
  t.is(statSync(join(dir, 'plumb')).mode & 0o111, 0o111)
  // Run it as a runtime does: a bare environment, no node on PATH.
  const v = await execa(join(dir, 'plumb'), [], { env: { CNI_COMMAND: 'VERSION', PATH: '/nonexistent' }, extendEnv: false, reject: false })
  t.is(v.exitCode, 0, v.stdout + v.stderr)
  t.is(JSON.parse(v.stdout).cniVersion, '1.1.0')
  const again = await runCli(['cni', 'install', '--dir', dir])
  t.is(again.exitCode, 0)
  t.regex(again.stdout, /^already installed: /)
  const del = await runCli(['cni', 'install', '--dir', dir, '--del'])
  t.is(del.exitCode, 0)
  t.false(existsSync(join(dir, 'plumb')))
  t.regex((await runCli(['cni', 'install', '--dir', dir, '--del'])).stdout, /nothing to remove/)
})

test("a `plumb` there that is not plumb's launcher: exit 4, left as it was (install and --del)", async (t) => {
  const dir = tmpDir(t)
  await execa('mkdir', ['-p', dir])
  writeFileSync(join(dir, 'plumb'), '#!/bin/sh\necho other\n')
  for (const args of [[], ['--del']]) {
    const r = await runCli(['cni', 'install', '--dir', dir, ...args])
    t.is(r.exitCode, 4)
    t.regex(r.stderr, /exists and is not plumb's launcher/)
  }
  t.is(readFileSync(join(dir, 'plumb'), 'utf8'), '#!/bin/sh\necho other\n')
})

test('--dry-run prints the launcher and writes nothing; a relative --dir is exit 2', async (t) => {
  const dir = tmpDir(t)
  const r = await runCli(['cni', 'install', '--dir', dir, '--dry-run'])
  t.is(r.exitCode, 0)
  t.regex(r.stdout, /install -m 0755 \/dev\/stdin .*\/plumb <<'EOF'/)
  t.regex(r.stdout, /PLUMB_NODE=\$n; export PLUMB_NODE; exec '.*\/dist\/plumb' "\$@"/)
  t.false(existsSync(dir))
  const rel = await runCli(['cni', 'install', '--dir', 'bin'])
  t.is(rel.exitCode, 2)
  t.regex(rel.stderr, /--dir "bin" is not an absolute path/)
})

test("doctor's view of a launcher: this install's is current; an older plumb's (which ran dist/plumb.cjs) or another node's is not; none, or another plugin's, is no launcher", async (t) => {
  const dir = tmpDir(t)
  t.is(launcherState(dir), undefined)
  t.is((await runCli(['cni', 'install', '--dir', dir])).exitCode, 0)
  const file = join(dir, 'plumb')
  t.deepEqual(launcherState(dir), { file, current: true })
  t.deepEqual(launcherState(dir, '/opt/other/node'), { file, current: false })
  // the text an older plumb wrote: node run on the bundle directly
  const text = readFileSync(file, 'utf8')
  const older = text.replace(/PLUMB_NODE=\$n; export PLUMB_NODE; exec '([^']*)\/dist\/plumb' "\$@"/, `exec "$n" '$1/dist/plumb.cjs' "$@"`)
  t.not(older, text, 'the replacement matched')
  writeFileSync(file, older)
  t.deepEqual(launcherState(dir), { file, current: false })
  writeFileSync(file, '#!/bin/sh\necho other\n')
  t.is(launcherState(dir), undefined)
})

test("the launcher runs the install's node, else node on PATH, else the usual places, handing it to the entry as PLUMB_NODE", async (t) => {
  const dir = tmpDir(t)
  const bin = join(dir, 'path')
  await execa('mkdir', ['-p', bin])
  const fake = join(bin, 'node')
  writeFileSync(fake, '#!/bin/sh\n', { mode: 0o755 })
  const entry = join(dir, 'entry')
  writeFileSync(entry, '#!/bin/sh\nprintf %s "$PLUMB_NODE"\n', { mode: 0o755 })
  const run = async (node: string, path: string): Promise<string> => {
    const launcher = join(dir, 'launcher')
    writeFileSync(launcher, launcherScript(node, entry), { mode: 0o755 })
    const r = await execa(launcher, [], { env: { PATH: path }, extendEnv: false, reject: false })
    t.is(r.exitCode, 0, r.stdout + r.stderr)
    return r.stdout
  }
  t.is(await run(process.execPath, bin), process.execPath, "the install's node first, PATH's notwithstanding")
  t.is(await run(join(dir, 'gone', 'node'), bin), fake, "the install's node gone: PATH's")
  const usual = ['/usr/local/bin/node', '/usr/bin/node'].find((n) => existsSync(n))
  if (usual) t.is(await run(join(dir, 'gone', 'node'), '/nonexistent'), usual, 'neither: the usual places')
})

// The crash tests' killer (test/helpers/killat.c) on a script whose calls are known: which calls
// are kill points, and that a kill lands before the K-th one runs, read back from the files the
// script leaves and the output it printed.

import type { ExecutionContext } from 'ava'
import { execa } from 'execa'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { canBuildKillAt, killAt, testIf } from '../helpers/index.js'

const PYTHON = '/usr/bin/python3'
const canRun = testIf(canBuildKillAt && existsSync(PYTHON), `needs a C compiler (for killat) and ${PYTHON}`)

// Its counted calls, in order: the rename, the new directory, the log's write, the first line of
// output, the unlink. Not counted: the temporary file's write, the write to a pipe whose read end
// it holds, the mkdir of a directory that is there, the second line right after the first.
const SCRIPT = `
import os, sys
d = sys.argv[1]
tmp = f"{d}/state.{os.getpid()}.tmp"
with open(tmp, "w") as f: f.write("x")
os.rename(tmp, f"{d}/state")
r, w = os.pipe(); os.write(w, b"*")
try: os.mkdir(d)
except FileExistsError: pass
os.mkdir(f"{d}/new")
with open(f"{d}/log", "w") as f: f.write("a")
print("one", flush=True); print("two", flush=True)
os.unlink(f"{d}/log")
`

/** The script under `killat k`: its exit code, output, killat's lines, and what it left in its directory. */
async function killedAt(t: ExecutionContext, k: number) {
  const dir = mkdtempSync('/tmp/pt-killat-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const script = join(dir, 'script.py')
  writeFileSync(script, SCRIPT)
  const work = join(dir, 'work')
  mkdirSync(work)
  const res = await execa(killAt(), [String(k), PYTHON, script, work], { reject: false, stdin: 'ignore', stripFinalNewline: false, env: { KILLAT_VERBOSE: '1' } })
  const left = readdirSync(work)
    .map((f) => (f.endsWith('.tmp') ? 'state.PID.tmp' : f))
    .sort()
  const log = left.includes('log') ? readFileSync(join(work, 'log'), 'utf8') : undefined
  return { code: res.exitCode, stdout: String(res.stdout), lines: String(res.stderr).split('\n').filter((l) => l.startsWith('killat: ')), left, log }
}

canRun('killat counts only the calls that change something, and says which', async (t) => {
  const r = await killedAt(t, 100)
  t.is(r.code, 0)
  t.is(r.stdout, 'one\ntwo\n')
  t.deepEqual(r.left, ['new', 'state'])
  // the output goes to execa's end (node gives a child a socket pair, not a pipe), not the script's
  t.deepEqual(
    r.lines.map((l) => l.replace(/\/tmp\/pt-killat-\w+/, 'DIR').replace(/^(killat: 4: write) (?:pipe|socket):\[\d+\]$/, '$1 STDOUT')),
    ['killat: 1: rename', 'killat: 2: mkdir DIR/work/new', 'killat: 3: write DIR/work/log', 'killat: 4: write STDOUT', 'killat: 5: unlink', 'killat: got through after 5 counted calls'],
  )
})

canRun('killat kills before the K-th counted call runs: what the script left is what the calls before it made', async (t) => {
  const at = await Promise.all([1, 2, 3, 4, 5].map((k) => killedAt(t, k)))
  for (const r of at) t.is(r.code, 137)
  t.deepEqual(at[0]!.left, ['state.PID.tmp'], 'K=1: the temporary file written, not renamed')
  t.true(at[0]!.lines.at(-1)!.startsWith('killat: K=1: rename'))
  t.deepEqual(at[1]!.left, ['state'], 'K=2: renamed, no new directory')
  t.deepEqual([at[2]!.left, at[2]!.log], [['log', 'new', 'state'], ''], 'K=3: the log opened, not written')
  t.deepEqual([at[3]!.log, at[3]!.stdout], ['a', ''], 'K=4: the log written, nothing printed')
  t.deepEqual([at[4]!.left, at[4]!.stdout], [['log', 'new', 'state'], 'one\ntwo\n'], 'K=5: both lines printed (the second was no kill point), the log not yet unlinked')
})

canRun('killat: a K below 1 is a usage error, and a command that cannot run exits 127', async (t) => {
  t.is((await execa(killAt(), ['0', 'true'], { reject: false })).exitCode, 2)
  t.is((await execa(killAt(), ['1', '/nonexistent/pt-killat'], { reject: false })).exitCode, 127)
})

// The CLI's output goes to fds 1 and 2 with write(2) (lib/cli/io.ts): all of it through a pipe
// whatever its reader does, a full non-blocking pipe waited on, a reader gone ending it quietly.

import test from 'ava'
import { execa } from 'execa'
import { join } from 'node:path'
import { packageRoot } from '../../lib/paths.js'

const io = join(packageRoot(), 'dist', 'lib', 'cli', 'io.js')
const MB = 1 << 20
/** a node that writes `bytes` x's to stdout through writeAll, then "done" to stderr */
const writer = (bytes: number): string[] => ['--input-type=module', '-e', `const { writeAll } = await import(${JSON.stringify(io)}); writeAll(1, 'x'.repeat(${bytes})); writeAll(2, 'done')`]

test('a megabyte through a pipe arrives whole', async (t) => {
  const r = await execa(process.execPath, writer(MB), { encoding: 'utf8' })
  t.is(r.stdout.length, MB)
  t.is(r.stderr, 'done')
})

test('a reader that goes away (EPIPE) ends the output quietly; the writer goes on', async (t) => {
  const r = await execa('sh', ['-c', `"$0" "$@" | head -c 1 >/dev/null; exit 0`, process.execPath, ...writer(MB)], { reject: false })
  t.is(r.exitCode, 0)
  t.is(r.stderr, 'done', 'no EPIPE error and the rest of the run happened')
})

test('a non-blocking pipe left full by a slow reader (EAGAIN) is waited on, not dropped', async (t) => {
  // python makes the pipe and sets O_NONBLOCK on the writer's end, as a parent that shares its own may
  const py = `
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)
os.close(w)
time.sleep(0.3)  # the 64 kB pipe fills long before
n = 0
while True:
    b = os.read(r, 65536)
    if not b: break
    n += len(b)
err = p.stderr.read().decode()
print(n, p.wait(), err)
`
  const r = await execa('python3', ['-c', py, process.execPath, ...writer(MB)])
  t.is(r.stdout, `${MB} 0 done`)
})

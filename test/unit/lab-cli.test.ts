// `plumb lab ...` through the CLI factory (no root): the subcommands in --help, usage errors and
// bad files as exit 2 (human and --json), and the drawings, which need nothing on the host.

import test from 'ava'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../lib/cli/index.js'
import { bufferIo } from '../../lib/cli/io.js'

async function run(...argv: string[]) {
  const io = bufferIo()
  const code = await main(argv, io)
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') }
}

const dir = mkdtempSync(join(tmpdir(), 'pt-labcli-'))
test.after.always(() => rmSync(dir, { recursive: true, force: true }))
const file = (name: string, text: string): string => {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}
const GOOD = file('good.yml', 'name: g\ntopology:\n  nodes:\n    a: {kind: netns}\n    b: {kind: netns}\n  links:\n    - endpoints: ["a:eth1", "b:eth1"]\n      ips: [198.18.0.0/31, 198.18.0.1/31]\n')

test('plumb --help lists lab; plumb lab --help lists its five commands', async (t) => {
  t.regex((await run('--help')).stdout, /plumb lab <command>/)
  const r = await run('lab', '--help')
  t.is(r.code, 0)
  for (const c of ['deploy <file>', 'check <file>', 'destroy <file>', 'inspect <file>', 'graph <file>']) t.true(r.stdout.includes(`plumb lab ${c}`), c)
  const check = await run('lab', 'check', '--help')
  for (const f of ['--format', '--out', '--timeout']) t.true(check.stdout.includes(f), f)
})

test('plumb lab without a command, or with an unknown one: exit 2', async (t) => {
  t.is((await run('lab')).code, 2)
  t.is((await run('lab', 'deplyo', GOOD)).code, 2)
})

test('a missing file is exit 2 naming it; --json gives the error object', async (t) => {
  const r = await run('lab', 'check', join(dir, 'nope.yml'))
  t.is(r.code, 2)
  t.regex(r.stderr, /^plumb: cannot read lab file ".*nope\.yml": no such file$/m)
  const j = await run('lab', 'deploy', join(dir, 'nope.yml'), '--json')
  t.is(j.code, 2)
  t.like(JSON.parse(j.stderr), { error: { code: 'USAGE' } })
})

test('a bad file is exit 2 for every lab command, with the path in the file', async (t) => {
  const bad = file('bad.yml', 'name: b\ntopology:\n  nodes: {a: {kind: netns}}\n  links:\n    - endpoints: ["a:eth1", "zz:eth1"]\n')
  for (const cmd of ['deploy', 'check', 'destroy', 'inspect', 'graph']) {
    const r = await run('lab', cmd, bad)
    t.is(r.code, 2, cmd)
    t.regex(r.stderr, /bad\.yml:5:29: topology\.links\[0\]\.endpoints\[1\]: unknown node "zz"/, cmd)
  }
})

test('check --timeout must be a positive number of seconds', async (t) => {
  const r = await run('lab', 'check', GOOD, '--timeout', '-1')
  t.is(r.code, 2)
  t.regex(r.stderr, /--timeout -1: give a positive number of seconds/)
})

test('graph: Mermaid by default, DOT with --format dot, to a file with --out', async (t) => {
  const m = await run('lab', 'graph', GOOD)
  t.is(m.code, 0)
  t.regex(m.stdout, /^graph LR/)
  t.regex(m.stdout, /n_a ---\|"eth1 198\.18\.0\.0\/31 — eth1 198\.18\.0\.1\/31"\| n_b/)
  const out = join(dir, 'g.dot')
  const d = await run('lab', 'graph', GOOD, '--format', 'dot', '--out', out)
  t.is(d.code, 0)
  t.is(d.stdout, '')
  t.regex(readFileSync(out, 'utf8'), /^graph "g" \{/)
})

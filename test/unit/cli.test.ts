// The CLI through its factory (main(argv, bufferIo)): real yargs parsing, exit codes of CLI.md,
// error rendering (human and --json). Only paths that fail before any kernel access run here.

import test from 'ava'
import { readFileSync } from 'node:fs'
import { loadCommands, main } from '../../lib/cli/index.js'
import { configure, dhcpStateDir, ovsdbSocket, recordsDir } from '../../lib/config.js'
import { bufferIo } from '../../lib/cli/io.js'
import { renderError, renderResult } from '../../lib/cli/render.js'
import { PlumbError } from '../../lib/errors.js'
import { emptyResult } from '../../lib/ops/result.js'

async function run(...argv: string[]) {
  const io = bufferIo()
  const code = await main(argv, io)
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') }
}

const version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version

test('--version prints the package version through the io, exit 0', async (t) => {
  const r = await run('--version')
  t.is(r.code, 0)
  t.is(r.stdout.trim(), version)
  t.is(r.stderr, '')
})

test('--help lists the seven commands and the tools around them', async (t) => {
  const r = await run('--help')
  t.is(r.code, 0)
  for (const cmd of ['attach-veth', 'set-ip', 'macvlan', 'vlan', 'ovs-port', 'dhcp', 'p2p-link', 'ls', 'detach', 'exec', 'wait', 'doctor', 'gc', 'move-dev', 'expose', 'masquerade', 'isolate']) {
    t.regex(r.stdout, new RegExp(`plumb ${cmd}\\b`), cmd)
  }
})

test('a command --help shows its examples and the global flags', async (t) => {
  const r = await run('attach-veth', '--help')
  t.is(r.code, 0)
  t.regex(r.stdout, /Examples:/)
  t.regex(r.stdout, /plumb attach-veth web br0 dhcp/)
  for (const flag of ['--json', '--dry-run', '--verbose', '--quiet', '--replace-gateway', '--mtu', '--mac']) t.true(r.stdout.includes(flag), flag)
})

test('no command: exit 2 with a hint', async (t) => {
  const r = await run()
  t.is(r.code, 2)
  t.regex(r.stderr, /^plumb: give a command/m)
  t.regex(r.stderr, /^hint: /m)
})

test('unknown command: exit 2, rendered as plumb: ... + hint:', async (t) => {
  const r = await run('frobnicate', 'x')
  t.is(r.code, 2)
  t.regex(r.stderr, /^plumb: .*frobnicate/m)
  t.regex(r.stderr, /^hint: .*--help/m)
  t.is(r.stdout, '')
})

test('unknown flag: exit 2 naming the flag', async (t) => {
  const r = await run('attach-veth', 'netns:pt-none', 'br0', '--bogus-flag')
  t.is(r.code, 2)
  t.regex(r.stderr, /^plumb: .*bogus-flag/m)
})

for (const argv of [['attach-veth', 'netns:pt-none'], ['set-ip', 'netns:pt-none'], ['detach'], ['exec'], ['wait'], ['macvlan', 'x'], ['p2p-link', 'x']]) {
  test(`missing positional: ${argv.join(' ')} exits 2`, async (t) => {
    const r = await run(...argv)
    t.is(r.code, 2)
    t.regex(r.stderr, /^plumb: Not enough non-option arguments/m)
    t.regex(r.stderr, /^hint: /m)
  })
}

test('invalid input is exit 2 with the hint, before any guest lookup', async (t) => {
  // The guest does not exist: a not-found (3) would mean validation came after resolution.
  const r = await run('attach-veth', 'netns:pt-nonexistent', 'br0', '198.18.0.10')
  t.is(r.code, 2)
  t.regex(r.stderr, /^plumb: missing prefix length in IP spec "198\.18\.0\.10"$/m)
  t.regex(r.stderr, /^hint: did you mean 198\.18\.0\.10\/24\?$/m)
})

test('--json errors are one {"error":{...}} object on stderr, nothing on stdout', async (t) => {
  const r = await run('--json', 'attach-veth', 'netns:pt-nonexistent', 'br0', '198.18.0.10/33')
  t.is(r.code, 2)
  t.is(r.stdout, '')
  const obj = JSON.parse(r.stderr) as { error: { code: string; message: string; hint?: string } }
  t.is(obj.error.code, 'USAGE')
  t.regex(obj.error.message, /33/)
})

test('--json usage errors from yargs are JSON too', async (t) => {
  const r = await run('attach-veth', '--json', 'netns:pt-nonexistent', 'br0', '--nope')
  t.is(r.code, 2)
  const obj = JSON.parse(r.stderr) as { error: { code: string; message: string; hint?: string } }
  t.is(obj.error.code, 'USAGE')
  t.regex(obj.error.message, /nope/)
  t.truthy(obj.error.hint)
})

test('detach needs an ifname or --all, not both (exit 2)', async (t) => {
  const none = await run('detach', 'netns:pt-nonexistent')
  t.is(none.code, 2)
  t.regex(none.stderr, /--all/)
  const both = await run('detach', 'netns:pt-nonexistent', 'eth1', '--all')
  t.is(both.code, 2)
})

test('set-ip with nothing to set is exit 2 with an example', async (t) => {
  const r = await run('set-ip', 'netns:pt-nonexistent', 'eth1')
  t.is(r.code, 2)
  t.regex(r.stderr, /^hint: e\.g\. plumb set-ip/m)
})

test('bad guest refs are exit 2', async (t) => {
  for (const g of ['netns:', 'pid:abc', 'pid:0', 'netns:a/b']) {
    const r = await run('attach-veth', g, 'br0', '198.18.0.10/24')
    t.is(r.code, 2, g)
    t.regex(r.stderr, /^plumb: /m, g)
  }
})

test('wait --print-sh prints the loop for the given ifname and timeout', async (t) => {
  const r = await run('wait', 'self', 'eth2', '--print-sh', '--timeout', '5')
  t.is(r.code, 0)
  t.regex(r.stdout, /\/sys\/class\/net\/eth2\/operstate/)
  t.regex(r.stdout, /-ge 50 \]/)
})

test('renderResult: human messages, --quiet prints nothing, --dry-run prints the plan, --json the object', (t) => {
  const res = { ...emptyResult('attach-veth', 'netns:x', false), messages: ['attached'], plan: ['ip link add a'] }
  const io = bufferIo()
  renderResult(res, {}, io)
  t.deepEqual(io.stdout, ['attached'])
  const quiet = bufferIo()
  renderResult(res, { quiet: true }, quiet)
  t.deepEqual(quiet.stdout, [])
  const dry = bufferIo()
  renderResult({ ...res, dryRun: true }, {}, dry)
  t.deepEqual(dry.stdout, ['ip link add a'])
  const json = bufferIo()
  renderResult(res, { json: true }, json)
  t.deepEqual(JSON.parse(json.stdout[0]!), res)
})

test('renderError: exit code from the error, rolled-back lines and hint; unknown errors are exit 1', (t) => {
  const io = bufferIo()
  const err = new PlumbError('CONFLICT', 'failed to add link "x": EEXIST', { hint: 'pick another', rolledBack: ['ip link del y'] })
  t.is(renderError(err, {}, io), 4)
  t.deepEqual(io.stderr, ['plumb: failed to add link "x": EEXIST', 'rolled back: ip link del y', 'hint: pick another'])
  const json = bufferIo()
  t.is(renderError(new Error('boom'), { json: true }, json), 1)
  t.deepEqual(JSON.parse(json.stderr[0]!), { error: { code: 'FAILED', message: 'boom' } })
})

test('renderError: an error that is not a PlumbError (a bug) shows its stack with --verbose only', (t) => {
  const bug = new TypeError('x is undefined')
  const quiet = bufferIo()
  t.is(renderError(bug, {}, quiet), 1)
  t.deepEqual(quiet.stderr, ['plumb: x is undefined'])
  const verbose = bufferIo()
  t.is(renderError(bug, { verbose: true }, verbose), 1)
  t.is(verbose.stderr[0], 'plumb: x is undefined')
  t.is(verbose.stderr[1], bug.stack)
  // a PlumbError is a verdict, not a bug: no stack even with --verbose
  const perr = bufferIo()
  renderError(new PlumbError('USAGE', 'bad'), { verbose: true }, perr)
  t.deepEqual(perr.stderr, ['plumb: bad'])
})

test.serial('main() takes the library settings from PLUMB_OVSDB, PLUMB_DHCP_STATE_DIR and PLUMB_RECORDS_DIR, and only from there', async (t) => {
  t.teardown(() => void configure({}))
  t.is((await main(['--version'], bufferIo(), { PLUMB_OVSDB: '/run/pt-x/db.sock', PLUMB_DHCP_STATE_DIR: '/run/pt-x/dhcp', PLUMB_RECORDS_DIR: '/run/pt-x/records' })), 0)
  t.is(ovsdbSocket(), '/run/pt-x/db.sock')
  t.is(dhcpStateDir(), '/run/pt-x/dhcp')
  t.is(recordsDir(), '/run/pt-x/records')
  await main(['--version'], bufferIo(), {})
  t.is(ovsdbSocket(), `${process.env.OVS_RUNDIR || '/var/run/openvswitch'}/db.sock`, "unset: Open vSwitch's own default")
  t.is(dhcpStateDir(), '/run/plumb/dhcp')
  t.is(recordsDir(), '/var/lib/plumb/records')
})

test('replay and watch are in --help, with their examples', async (t) => {
  const r = await run('--help')
  t.regex(r.stdout, /plumb replay <guest>/)
  t.regex(r.stdout, /plumb watch\b/)
  const w = await run('watch', '--help')
  t.is(w.code, 0)
  for (const s of ['--once', '--engine', 'plumb watch --once', 'plumb-watch.service']) t.true(w.stdout.includes(s), s)
})

test('replay takes a container: an ip netns, a pid or the host is exit 2 before anything is asked', async (t) => {
  for (const guest of ['netns:pt-none', 'pid:1', '/proc/1/ns/net']) {
    const r = await run('replay', guest)
    t.is(r.code, 2, guest)
    t.regex(r.stderr, /^plumb: replay takes a Docker or Podman container/m)
    t.regex(r.stderr, /^hint: plumb records what it does to containers/m)
  }
  t.is((await run('replay')).code, 2, 'no guest')
})

test('watch --engine takes docker or podman (exit 2 otherwise)', async (t) => {
  const r = await run('watch', '--once', '--engine', 'lxc')
  t.is(r.code, 2)
  t.regex(r.stderr, /unknown engine "lxc" \(--engine\)/)
})

test('--no-persist is a global flag every command takes (exit 2 comes from the bad input, not the flag)', async (t) => {
  const r = await run('attach-veth', 'netns:pt-none', 'br0', '198.18.0.10', '--no-persist')
  t.is(r.code, 2)
  t.regex(r.stderr, /did you mean 198\.18\.0\.10\/24/)
})

test('a run loads and registers only the command it names; help, completion and unknown commands get them all', async (t) => {
  const all = (await loadCommands([])).length
  t.true(all >= 19)
  t.is((await loadCommands(['attach-veth', 'web', 'br0'])).length, 1)
  t.is((await loadCommands(['--json', '-v', 'ls'])).length, 1, 'global flags before the command')
  t.is((await loadCommands(['exec', 'web', '--', 'ip', 'a'])).length, 1)
  for (const argv of [['--help'], ['--version'], ['atach-veth'], ['completion'], ['--get-yargs-completions', 'plumb', 'attach-veth', '--'], ['--', 'ls']]) {
    t.is((await loadCommands(argv)).length, all, argv.join(' '))
  }
  // what each of those runs shows still comes from every command
  const typo = await run('atach-veth')
  t.is(typo.code, 2)
  t.regex(typo.stderr, /Did you mean attach-veth\?/)
  const names = await run('--get-yargs-completions', 'plumb', 'a')
  for (const cmd of ['attach-veth', 'p2p-link', 'lab', 'ls']) t.regex(names.stdout, new RegExp(`^${cmd}$`, 'm'))
  const flags = await run('--get-yargs-completions', 'plumb', 'attach-veth', '--')
  t.regex(flags.stdout, /^--host-ifname$/m)
})

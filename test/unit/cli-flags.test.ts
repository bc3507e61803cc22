// Issue 8, items 14-16, 18 and 19, through the real argument parsing (main() with bufferIo, and
// the built executable for help at a given width): bad flags are exit 2 naming the flag, before
// any guest is looked up (a guest that does not exist would be exit 3 otherwise).

import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { main } from '../../lib/cli/index.js'
import { bufferIo } from '../../lib/cli/io.js'
import { runCli } from '../helpers/cli.js'
import { DEFAULT_CNI_BIN_DIR } from '../../lib/paths.js'

async function run(...argv: string[]) {
  const io = bufferIo()
  const code = await main(argv, io)
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') }
}

const G = 'netns:pt-nonexistent'

// --- 14: wait --timeout ---

for (const bad of ['abc', '-1', '', '1e3', 'Infinity', '10s']) {
  // `self` exists (unlike G, a guest lookup would not fail first): a wait that took "abc" for
  // a timeout would poll for an eth1 here forever
  test(`wait --timeout ${JSON.stringify(bad)}: exit 2 naming --timeout, no wait`, async (t) => {
    const r = await run('wait', 'self', 'pt-noif', '--timeout', bad)
    t.is(r.code, 2, r.stderr)
    t.regex(r.stderr, /^plumb: --timeout .*seconds/m)
    t.regex(r.stderr, /^hint: e\.g\. --timeout 10$/m)
    const sh = await run('wait', 'self', '--print-sh', '--timeout', bad)
    t.is(sh.code, 2, sh.stderr)
    t.is(sh.stdout, '', 'no script')
  })
}

test('wait --print-sh: a fractional timeout counts whole tenths; the default is 30 s', async (t) => {
  const r = await run('wait', 'self', '--print-sh', '--timeout', '2.5')
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /-ge 25 \]/)
  t.notRegex(r.stdout, /NaN/)
  t.regex((await run('wait', 'self', '--print-sh')).stdout, /-ge 300 \]/)
})

test('dhcp --timeout and --dhcp-timeout: words and 0 are exit 2 naming the flag', async (t) => {
  for (const [argv, flag] of [
    [['dhcp', G, 'eth1', '--timeout', 'abc'], '--timeout'],
    [['dhcp', G, 'eth1', '--timeout', '0'], '--timeout'],
    [['attach-veth', G, 'br0', 'dhcp', '--dhcp-timeout', 'soon'], '--dhcp-timeout'],
  ] as const) {
    const r = await run(...argv)
    t.is(r.code, 2, `${argv.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, new RegExp(`^plumb: ${flag} `, 'm'))
  }
})

// --- 15: a single-valued flag given twice ---

for (const [argv, flag] of [
  [['attach-veth', G, 'br0', '--mac', '02:00:00:00:00:01', '--mac', '02:00:00:00:00:02'], '--mac'],
  [['attach-veth', G, 'br0', '-i', 'a', '-i', 'b'], '--ifname \\(-i\\)'],
  [['attach-veth', G, 'br0', '--mtu', '1400', '--mtu', '1500'], '--mtu'],
  [['p2p-link', G, 'netns:pt-other', '--ip-a', '198.18.5.0/31', '--ip-a', '198.18.5.2/31'], '--ip-a'],
  [['macvlan', G, 'pt-nic', '--mode', 'bridge', '--mode', 'vepa'], '--mode'],
  [['wait', G, '--timeout', '1', '--timeout', '2'], '--timeout'],
] as const) {
  test(`a repeated single-valued flag is exit 2 naming it: ${argv.slice(3).join(' ')}`, async (t) => {
    const r = await run(...argv)
    t.is(r.code, 2, r.stderr)
    t.regex(r.stderr, new RegExp(`^plumb: ${flag} given more than once`, 'm'))
    t.notRegex(r.stderr, /trim is not a function|empty interface name/)
  })
}

test('repeatable flags and positionals still repeat: --route twice, several IP specs', async (t) => {
  // gets past parsing to the guest lookup: exit 3 for the missing netns, not 2
  const r = await run('attach-veth', G, 'br0', '198.18.0.10/24', '2001:db8::10/64', '--route', '198.19.0.0/16@198.18.0.1', '--route', '198.20.0.0/16@198.18.0.1')
  t.is(r.code, 3, r.stderr)
})

// --- 16: two gateways of a family, or a route given twice, is bad input ---

for (const [argv, re] of [
  [['attach-veth', G, 'br0', '198.18.0.10/24@198.18.0.1', '198.18.0.11/24@198.18.0.2'], /two IPv4 default routes given \(198\.18\.0\.10\/24@198\.18\.0\.1 and 198\.18\.0\.11\/24@198\.18\.0\.2\)/],
  [['attach-veth', G, 'br0', '198.18.0.10/24@198.18.0.1', '--route', 'default@198.18.0.2'], /two IPv4 default routes given .* and --route default@198\.18\.0\.2/],
  [['set-ip', G, 'eth1', '--route', 'default@2001:db8::1', '--route', 'default@2001:db8::2'], /two IPv6 default routes/],
  [['set-ip', G, 'eth1', '--route', '198.19.0.0/16@198.18.0.1', '--route', '198.19.0.0/16@198.18.0.2'], /--route 198\.19\.0\.0\/16 given twice/],
  [['macvlan', G, 'pt-nic', '--route', '198.19.0.0/16', '--route', '198.19.0.0/16'], /given twice/],
] as const) {
  test(`bad input before the guest is looked up: ${argv.slice(3).join(' ')}`, async (t) => {
    const r = await run(...argv)
    t.is(r.code, 2, r.stderr)
    t.regex(r.stderr, re)
    t.regex(r.stderr, /^hint: /m)
  })
}

test('the same gateway twice (on two addresses, or as --route default@GW too) is one default route, not an error', async (t) => {
  const r = await run('attach-veth', G, 'br0', '198.18.0.10/24@198.18.0.1', '198.18.0.11/24@198.18.0.1', '--route', 'default@198.18.0.1')
  t.is(r.code, 3, r.stderr) // past validation: the guest does not exist
})

// --- 18: --json in any spelling yargs accepts ---

for (const spelling of [['--json'], ['--json=true'], ['--json', 'true']]) {
  test(`errors are JSON with ${spelling.join(' ')}, before or after the command`, async (t) => {
    for (const argv of [['attach-veth', G, 'br0', '198.18.0.10', ...spelling], [...spelling.slice(0, 1), 'attach-veth', G, 'br0', '198.18.0.10']]) {
      const r = await run(...argv)
      t.is(r.code, 2, argv.join(' '))
      t.is(r.stdout, '')
      t.like(JSON.parse(r.stderr), { error: { code: 'USAGE', message: 'missing prefix length in IP spec "198.18.0.10"' } }, argv.join(' '))
    }
  })
}

test('a yargs usage error with --json=true is JSON too; --no-json after --json is text', async (t) => {
  const r = await run('attach-veth', G, 'br0', '--json=true', '--bogus')
  t.is(r.code, 2)
  t.like(JSON.parse(r.stderr), { error: { code: 'USAGE' } })
  const text = await run('attach-veth', G, 'br0', '198.18.0.10', '--json', '--no-json')
  t.is(text.code, 2)
  t.regex(text.stderr, /^plumb: missing prefix length/m)
  // after `--`, --json is the guest command's, not plumb's
  const exec = await run('exec', 'netns:pt-a/b', '--', 'ip', '--json')
  t.regex(exec.stderr, /^plumb: /m)
})

// --- 19: each command takes (and shows) only the shared flags that mean something for it ---

const OPS = ['attach-veth', 'set-ip', 'detach', 'macvlan', 'vlan', 'ovs-port', 'dhcp', 'p2p-link', 'move-dev', 'names', 'sysctl', 'pipework']
const TAKES: Record<string, string[]> = {
  ...Object.fromEntries(OPS.map((c) => [c, ['json', 'dry-run', 'verbose', 'quiet', 'allow-host']])),
  ls: ['json', 'allow-host'],
  exec: ['json', 'allow-host'],
  wait: ['json', 'quiet'],
  doctor: ['json'],
  gc: ['json', 'dry-run', 'verbose', 'quiet'],
  vxlan: ['json', 'dry-run', 'verbose', 'quiet'],
  'lab deploy': ['json', 'dry-run', 'verbose', 'quiet'],
  'lab destroy': ['json', 'dry-run', 'verbose', 'quiet'],
  'lab check': ['json', 'quiet'],
  'lab inspect': ['json'],
  'lab graph': [],
  'cni install': ['json', 'dry-run', 'quiet'],
}
const SHARED = ['json', 'dry-run', 'verbose', 'quiet', 'allow-host']

for (const [cmd, takes] of Object.entries(TAKES)) {
  test(`${cmd} --help lists the shared flags it takes, and no others, nor --version`, async (t) => {
    const r = await run(...cmd.split(' '), '--help')
    t.is(r.code, 0, r.stderr)
    for (const flag of SHARED) t.is(new RegExp(`--${flag}\\b`).test(r.stdout), takes.includes(flag), `--${flag}`)
    t.notRegex(r.stdout, /--version/)
  })
  const operands = cmd === 'ls' || cmd === 'doctor' || cmd === 'gc' ? [] : cmd === 'vxlan' ? ['pt-br', '--vni', '42'] : cmd.startsWith('lab ') ? ['/nonexistent/pt-lab.yml'] : cmd === 'cni install' ? ['--dir', '/nonexistent/pt-cni'] : [G, 'eth1']
  if (!takes.includes('allow-host')) {
    test(`${cmd} refuses --allow-host, which means nothing for it (exit 2)`, async (t) => {
      const r = await run(...cmd.split(' '), ...operands, '--allow-host')
      t.is(r.code, 2, `${cmd} --allow-host: ${r.stderr}`)
      t.regex(r.stderr.split('\n')[0]!.replace(/^plumb: /, ''), /^Unknown arguments?: allow-host$/)
    })
  }
  const hidden = ['json', 'dry-run', 'verbose', 'quiet'].filter((f) => !takes.includes(f))
  if (hidden.length) {
    test(`${cmd} accepts CLI.md's ${hidden.join(', ')} without listing them`, async (t) => {
      for (const flag of hidden) {
        const r = await run(...cmd.split(' '), ...operands, `--${flag}`)
        t.notRegex(r.stderr, /Unknown argument/, `${cmd} --${flag}`)
      }
    })
  }
}

test('--version is the top level\'s: plumb --version works, a command\'s --version is unknown', async (t) => {
  t.is((await run('--version')).code, 0)
  const r = await run('attach-veth', G, 'br0', '--version')
  t.is(r.code, 2)
})

/** The words of a help text (runs of non-space), to compare a wrapped rendering with an unwrapped one. */
const words = (text: string): string[] => text.split(/\s+/).filter(Boolean).sort()

/**
 * Every word plumb's help may show: the words of the CLI's own source (descriptions, examples,
 * option names) and of yargs's labels. A word cut in two ("inter" / "face", "198.18" / ".0.254")
 * is in neither, whatever the reference rendering does.
 */
const cliDir = fileURLToPath(new URL('../../../lib/cli/', import.meta.url))
const sourceText = [cliDir, join(cliDir, 'commands')].flatMap((d) => readdirSync(d).filter((n) => n.endsWith('.ts')).map((n) => readFileSync(join(d, n), 'utf8'))).join('\n')
const YARGS_WORDS = 'Commands: Positionals: Options: Examples: Show help version number [boolean] [string] [array] [number] [required] [default: false] true] []] [command] <command> [options] generate completion script'
/** A word without the punctuation around it: `(--net=host),` -> `net=host`, `guest's` stays. */
const bare = (w: string): string => w.replace(/^[-()[\]<>,.;:'"`{}]+|[-()[\]<>,.;:'"`{}]+$/g, '')
// (and the values the CLI interpolates into its texts)
const INTERPOLATED = `${DEFAULT_CNI_BIN_DIR} ${DEFAULT_CNI_BIN_DIR}/plumb`
const corpus = new Set([sourceText.replace(/\\'/g, "'"), YARGS_WORDS, INTERPOLATED].join(' ').split(/[\s(){}]+|\\n/).map(bare))
const known = (word: string): boolean => corpus.has(bare(word))

// (`completion --help` prints the completion script, which no width changes)
const COMMANDS = ['', ...Object.keys(TAKES)]
for (const cols of [80, 100, 120]) {
  test(`--help at COLUMNS=${cols} breaks lines only between words and stays within ${cols} columns, for every command`, async (t) => {
    for (const cmd of COMMANDS) {
      const argv = [...(cmd ? cmd.split(' ') : []), '--help']
      const [wrapped, flat] = await Promise.all([runCli(argv, { env: { ...process.env, COLUMNS: String(cols) } }), runCli(argv, { env: { ...process.env, COLUMNS: '' } })])
      const name = `${cmd || 'plumb'} at ${cols}`
      t.is(wrapped.exitCode, 0, `${cmd} --help: ${wrapped.stderr}`)
      t.deepEqual(words(wrapped.stdout).filter((w) => !known(w)), [], `${name}: words cut in two`)
      t.deepEqual(words(wrapped.stdout), words(flat.stdout), `${name}: the same words as unwrapped`)
      const long = wrapped.stdout.split('\n').filter((l) => [...l].length > cols)
      t.deepEqual(long, [], `${name}: lines over ${cols} columns`)
    }
  })
}

// The CLI factory (lerna style): yargs with one module per command, and main() mapping
// everything to the exit codes of CLI.md. The executable (bin/plumb.cts) only loads the bundle
// and hands argv to main().

import { fstatSync } from 'node:fs'
import yargs from 'yargs'
import { Parser } from 'yargs/helpers'
import type { Argv, CommandModule, MiddlewareFunction } from 'yargs'
import { configFromEnv, configure } from '../config.js'
import { usageError } from '../errors.js'
import { packageVersion } from '../paths.js'
import { SHARED_FLAGS, refuseRepeatedFlags } from './common.js'
import type { CliState, GlobalArgs } from './common.js'
import { processIo } from './io.js'
import { restoreLauncherEnv } from './launcher-env.js'
import type { CliIo } from './io.js'
import { renderError } from './render.js'

/** A command module's factory: what each lib/cli/commands module exports. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command has its own Args
export type CommandFactory = (state: CliState, argv: string[]) => CommandModule<GlobalArgs, any>

/**
 * Every command, in --help's order, by the name typed, and how to load its module. The bundle
 * loads a command module (its op, and everything the op uses) only when it is imported, and yargs
 * builds each registered command's usage on every run: a run loads and registers only the
 * command it names (see loadCommands).
 */
const COMMANDS: ReadonlyArray<readonly [name: string, load: () => Promise<CommandFactory>]> = [
  ['attach-veth', async () => (await import('./commands/attach-veth.js')).attachVethCommand],
  ['set-ip', async () => (await import('./commands/set-ip.js')).setIpCommand],
  ['detach', async () => (await import('./commands/detach.js')).detachCommand],
  ['ls', async () => (await import('./commands/ls.js')).lsCommand],
  ['exec', async () => (await import('./commands/exec.js')).execCommand],
  ['macvlan', async () => (await import('./commands/macvlan.js')).macvlanCommand],
  ['vlan', async () => (await import('./commands/vlan.js')).vlanCommand],
  ['ovs-port', async () => (await import('./commands/ovs-port.js')).ovsPortCommand],
  ['dhcp', async () => (await import('./commands/dhcp.js')).dhcpCommand],
  ['p2p-link', async () => (await import('./commands/p2p-link.js')).p2pLinkCommand],
  ['move-dev', async () => (await import('./commands/move-dev.js')).moveDevCommand],
  ['wait', async () => (await import('./commands/wait.js')).waitCommand],
  ['doctor', async () => (await import('./commands/doctor.js')).doctorCommand],
  ['gc', async () => (await import('./commands/gc.js')).gcCommand],
  ['vxlan', async () => (await import('./commands/vxlan.js')).vxlanCommand],
  ['names', async () => (await import('./commands/names.js')).namesCommand],
  ['sysctl', async () => (await import('./commands/sysctl.js')).sysctlCommand],
  ['pipework', async () => (await import('./commands/pipework.js')).pipeworkCommand],
  ['lab', async () => (await import('./commands/lab.js')).labCommand],
  ['cni', async () => (await import('./commands/cni.js')).cniCommand],
  ['expose', async () => (await import('./commands/expose.js')).exposeCommand],
  ['masquerade', async () => (await import('./commands/masquerade.js')).masqueradeCommand],
  ['isolate', async () => (await import('./commands/isolate.js')).isolateCommand],
  ['replay', async () => (await import('./commands/replay.js')).replayCommand],
  ['watch', async () => (await import('./commands/watch.js')).watchCommand],
]

/**
 * The command modules this run needs: only the one it names, when it names a known one (every
 * shared flag is a boolean, so the first word that is not a flag is the command). Everything else
 * (--help or --version alone, completion, an unknown or misspelt command, which yargs answers
 * with the whole list and a "did you mean") gets them all.
 */
export async function loadCommands(argv: string[]): Promise<CommandFactory[]> {
  const end = argv.indexOf('--')
  const words = (end < 0 ? argv : argv.slice(0, end)).filter((a) => !a.startsWith('-'))
  const named = argv.includes('--get-yargs-completions') ? undefined : COMMANDS.find(([name]) => name === words[0])
  return Promise.all((named ? [named] : COMMANDS).map(([, load]) => load()))
}

/** The yargs instance for `argv` with `commands` registered (from loadCommands). */
export function createCli(argv: string[], state: CliState, commands: CommandFactory[]): Argv<GlobalArgs> {
  const cli = yargs(argv)
    .scriptName('plumb')
    .usage('$0 <command> [options]\n\nContainer network plumbing: veth, bridges, macvlan, VLANs, OVS, DHCP,\np2p links, published ports, NAT and isolation for --net=none containers,\nas transactions with undo.')
    .parserConfiguration(PARSER_CONFIG)
    // Known here so that they may come before the command; each command defines the ones it takes.
    .options(Object.fromEntries(Object.entries(SHARED_FLAGS).map(([k, o]) => [k, { ...o, global: false }])))
    // yargs hands middleware its instance too (not in @types/yargs): the command's options, to tell
    // a repeated single-valued flag from a repeatable one.
    .middleware(((args: Record<string, unknown>, y: { getOptions(): Parameters<typeof refuseRepeatedFlags>[1] }) => refuseRepeatedFlags(args, y.getOptions())) as unknown as MiddlewareFunction, true) as unknown as Argv<GlobalArgs>
  for (const command of commands) cli.command(command(state, argv))

  return cli
    .completion('completion', 'print a bash/zsh completion script (plumb completion >> ~/.bashrc)')
    .demandCommand(1, 'give a command: plumb --help lists them')
    .recommendCommands()
    .strict()
    // read (package.json, ~0.5 ms of a cold run) only when it is asked for
    .version(argv.includes('--version') ? packageVersion() : '')
    .help()
    .alias('help', 'h')
    // the width only matters when help is shown (wrapping costs ~8 ms; yargs' own render of the
    // command's help on every run is patched out of the bundle: scripts/bundle.mjs)
    .wrap(argv.includes('--help') || argv.includes('-h') ? helpWidth() : null)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err
      // Usage errors (unknown command or flag, missing argument): exit 2. yargs names an unknown
      // flag twice, as typed and camel-cased ("dry-run, dryRun"): once is enough.
      const text = /^Unknown arguments?: /.test(msg) ? msg.replace(/, [a-z]+(?:[A-Z][a-z0-9]*)+(?=,|$)/g, '') : msg
      throw usageError(text, 'see plumb --help, or plumb <command> --help')
    }) as unknown as Argv<GlobalArgs>
}

const PARSER_CONFIG = { 'parse-positional-numbers': false, 'populate--': true } as const

/**
 * The width help is wrapped to: the terminal's, else $COLUMNS (a pipe has no width; the
 * variable is how a user says one), at most 120; unwrapped when neither says. process.stdout
 * (a tty.WriteStream for a terminal, the one way to its width) only when fd 1 can be one.
 */
function helpWidth(): number | null {
  const cols = (mayBeTerminal(1) ? process.stdout.columns : 0) || Number(process.env.COLUMNS) || 0
  return cols > 0 ? Math.min(cols, 120) : null
}

function mayBeTerminal(fd: number): boolean {
  try {
    return fstatSync(fd).isCharacterDevice()
  } catch {
    return false // closed
  }
}

/**
 * --json and --verbose as yargs reads them (`--json=true`, `--no-json`, `-v`, the last one
 * winning, nothing after `--`): for errors raised while yargs parses, before any handler has
 * the parsed flags.
 */
export function renderFlags(argv: string[]): { json: boolean; verbose: boolean } {
  const parsed = Parser(argv, { boolean: ['json', 'verbose'], alias: { verbose: ['v'] }, configuration: PARSER_CONFIG })
  return { json: parsed.json === true, verbose: parsed.verbose === true }
}

/** Parse and run; resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  restoreLauncherEnv(env)
  configure(configFromEnv(env))
  const state: CliState = { exitCode: 0, io }
  try {
    const cli = createCli(argv, state, await loadCommands(argv))
    // A parse callback makes yargs hand --help/--version/completion text to us instead of
    // console.log, so it goes through `io` like every other output (and tests can read it).
    await cli.parseAsync(argv, {}, (_err, _args, output) => {
      if (output) io.out(output)
    })
  } catch (err) {
    // read only for an error that escaped the handlers (~1 ms of yargs-parser a run)
    return renderError(err, renderFlags(argv), io)
  }
  return state.exitCode
}

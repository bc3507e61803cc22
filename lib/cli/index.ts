// The CLI factory (lerna style): yargs with one module per command, and main() mapping
// everything to the exit codes of CLI.md. The executable (bin/plumb.cts) only loads the bundle
// and hands argv to main().

import yargs from 'yargs'
import { Parser } from 'yargs/helpers'
import type { Argv, MiddlewareFunction } from 'yargs'
import { configFromEnv, configure } from '../config.js'
import { usageError } from '../errors.js'
import { packageVersion } from '../paths.js'
import { attachVethCommand } from './commands/attach-veth.js'
import { detachCommand } from './commands/detach.js'
import { execCommand } from './commands/exec.js'
import { lsCommand } from './commands/ls.js'
import { setIpCommand } from './commands/set-ip.js'
import { waitCommand } from './commands/wait.js'
import { dhcpCommand } from './commands/dhcp.js'
import { doctorCommand } from './commands/doctor.js'
import { gcCommand } from './commands/gc.js'
import { macvlanCommand } from './commands/macvlan.js'
import { moveDevCommand } from './commands/move-dev.js'
import { ovsPortCommand } from './commands/ovs-port.js'
import { p2pLinkCommand } from './commands/p2p-link.js'
import { vlanCommand } from './commands/vlan.js'
import { vxlanCommand } from './commands/vxlan.js'
import { namesCommand } from './commands/names.js'
import { sysctlCommand } from './commands/sysctl.js'
import { pipeworkCommand } from './commands/pipework.js'
import { labCommand } from './commands/lab.js'
import { cniCommand } from './commands/cni.js'
import { SHARED_FLAGS, refuseRepeatedFlags } from './common.js'
import { exposeCommand } from './commands/expose.js'
import { masqueradeCommand } from './commands/masquerade.js'
import { isolateCommand } from './commands/isolate.js'
import { replayCommand } from './commands/replay.js'
import { watchCommand } from './commands/watch.js'
import type { CliState, GlobalArgs } from './common.js'
import { processIo } from './io.js'
import type { CliIo } from './io.js'
import { renderError } from './render.js'

export function createCli(argv: string[], state: CliState): Argv<GlobalArgs> {
  const cli = yargs(argv)
    .scriptName('plumb')
    .usage('$0 <command> [options]\n\nContainer network plumbing: veth, bridges, macvlan, VLANs, OVS, DHCP,\np2p links, published ports, NAT and isolation for --net=none containers,\nas transactions with undo.')
    .parserConfiguration(PARSER_CONFIG)
    // Known here so that they may come before the command; each command defines the ones it takes.
    .options(Object.fromEntries(Object.entries(SHARED_FLAGS).map(([k, o]) => [k, { ...o, global: false }])))
    // yargs hands middleware its instance too (not in @types/yargs): the command's options, to tell
    // a repeated single-valued flag from a repeatable one.
    .middleware(((args: Record<string, unknown>, y: { getOptions(): Parameters<typeof refuseRepeatedFlags>[1] }) => refuseRepeatedFlags(args, y.getOptions())) as unknown as MiddlewareFunction, true) as unknown as Argv<GlobalArgs>
  cli
    .command(attachVethCommand(state))
    .command(setIpCommand(state))
    .command(detachCommand(state))
    .command(lsCommand(state))
    .command(execCommand(state))
    .command(macvlanCommand(state))
    .command(vlanCommand(state))
    .command(ovsPortCommand(state))
    .command(dhcpCommand(state))
    .command(p2pLinkCommand(state))
    .command(moveDevCommand(state))
    .command(waitCommand(state))
    .command(doctorCommand(state))
    .command(gcCommand(state))
    .command(vxlanCommand(state))
    .command(namesCommand(state))
    .command(sysctlCommand(state))
    .command(pipeworkCommand(state, argv))
    .command(labCommand(state))
    .command(cniCommand(state))
    .command(exposeCommand(state))
    .command(masqueradeCommand(state))
    .command(isolateCommand(state))
    .command(replayCommand(state))
    .command(watchCommand(state))

  return cli
    .completion('completion', 'print a bash/zsh completion script (plumb completion >> ~/.bashrc)')
    .demandCommand(1, 'give a command: plumb --help lists them')
    .recommendCommands()
    .strict()
    .version(packageVersion())
    .help()
    .alias('help', 'h')
    // yargs renders the command's help on every run (cacheHelpMessage): without wrapping that is
    // ~8 ms cheaper, and the width only matters when help is shown.
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
 * variable is how a user says one), at most 120; unwrapped when neither says.
 */
function helpWidth(): number | null {
  const cols = process.stdout.columns || Number(process.env.COLUMNS) || 0
  return cols > 0 ? Math.min(cols, 120) : null
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
  configure(configFromEnv(env))
  const state: CliState = { exitCode: 0, io }
  const { json, verbose } = renderFlags(argv)
  try {
    const cli = createCli(argv, state)
    // A parse callback makes yargs hand --help/--version/completion text to us instead of
    // console.log, so it goes through `io` like every other output (and tests can read it).
    await cli.parseAsync(argv, {}, (_err, _args, output) => {
      if (output) io.out(output)
    })
  } catch (err) {
    return renderError(err, { json, verbose }, io)
  }
  return state.exitCode
}

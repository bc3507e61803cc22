// The CLI factory (lerna style): yargs with one module per command, and main() mapping
// everything to the exit codes of CLI.md. The executable (bin/plumb.cts) only loads the bundle
// and hands argv to main().

import yargs from 'yargs'
import type { Argv } from 'yargs'
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
import type { CliState, GlobalArgs } from './common.js'
import { processIo } from './io.js'
import type { CliIo } from './io.js'
import { renderError } from './render.js'

export function createCli(argv: string[], state: CliState): Argv<GlobalArgs> {
  const cli = yargs(argv)
    .scriptName('plumb')
    .usage('$0 <command> [options]\n\nContainer network plumbing: veth, bridges, macvlan, VLANs, OVS, DHCP,\np2p links for --net=none containers, as transactions with undo.')
    .parserConfiguration({ 'parse-positional-numbers': false, 'populate--': true })
    .option('json', { type: 'boolean', default: false, global: true, describe: 'print a JSON result (errors as JSON on stderr)' })
    .option('dry-run', { type: 'boolean', default: false, global: true, describe: 'print the steps as ip/ovs-vsctl commands; change nothing' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, global: true, describe: 'echo each step with its time on stderr' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, global: true, describe: 'print nothing on success' })
    .option('allow-host', { type: 'boolean', default: false, global: true, describe: "allow a guest whose netns is the host's own (--net=host)" }) as unknown as Argv<GlobalArgs>
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
    .wrap(argv.includes('--help') || argv.includes('-h') ? Math.min(110, process.stdout.columns || 100) : null)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err
      // Usage errors (unknown command or flag, missing argument): exit 2.
      throw usageError(msg, 'see plumb --help, or plumb <command> --help')
    }) as unknown as Argv<GlobalArgs>
}

/** Parse and run; resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  configure(configFromEnv(env))
  const state: CliState = { exitCode: 0, io }
  const json = argv.includes('--json')
  const verbose = argv.includes('--verbose') || argv.includes('-v')
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

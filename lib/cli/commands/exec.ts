// plumb exec <guest> [--mount] -- CMD [ARG...]

import type { Argv, CommandModule } from 'yargs'
import { ops, runCustom, sharedFlags, strings } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest: string
  cmd?: string[]
  mount: boolean
  '--'?: string[]
}

export const execCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'exec <guest> [cmd..]',
  describe: "run a HOST command in the guest's network namespace only (--mount: the guest's own files and programs)",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, ['json', 'allow-host'])
      .positional('guest', { type: 'string', describe: 'the guest' })
      .option('mount', {
        type: 'boolean',
        default: false,
        describe: "also enter the guest's mount and UTS namespaces: the command and the files it reads are the guest's (an ip netns: ip netns exec)",
      })
      .epilog(
        "Without --mount the command is the host's program, run with the host's files: only the network (interfaces, routes, sockets) is the guest's. `plumb exec web -- cat /etc/hosts` shows the HOST's /etc/hosts; add --mount to see web's.",
      )
      .example('$0 exec web -- ip route', "the guest's routes (the host's ip binary)")
      .example('$0 exec web -- ping -c1 198.18.0.11', 'ping from inside web')
      .example('$0 exec --mount web -- cat /etc/hosts', "web's own /etc/hosts, with web's own cat") as unknown as Argv<Args>,
  handler: (args) =>
    runCustom(
      state,
      args,
      async () => (await ops()).execIn({ guest: String(args.guest), argv: [...strings(args.cmd), ...strings(args['--'])], allowHost: args.allowHost, mount: args.mount }),
      (r) => {
        // The command's own exit code is ours: exec is transparent.
        state.exitCode = r.exitCode
      },
    ),
})

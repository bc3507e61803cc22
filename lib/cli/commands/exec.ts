// plumb exec <guest> -- CMD [ARG...]

import type { Argv, CommandModule } from 'yargs'
import { execIn } from '../../ops/exec.js'
import { runCustom, strings } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest: string
  cmd?: string[]
  '--'?: string[]
}

export const execCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'exec <guest> [cmd..]',
  describe: "run a command in the guest's network namespace",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('guest', { type: 'string', describe: 'the guest' })
      .example('$0 exec web -- ip route', "the guest's routes")
      .example('$0 exec web -- ping -c1 198.18.0.11', 'ping from inside web') as unknown as Argv<Args>,
  handler: (args) =>
    runCustom(
      state,
      args,
      () => execIn({ guest: String(args.guest), argv: [...strings(args.cmd), ...strings(args['--'])], allowHost: args.allowHost }),
      (r) => {
        // The command's own exit code is ours: exec is transparent.
        state.exitCode = r.exitCode
      },
    ),
})

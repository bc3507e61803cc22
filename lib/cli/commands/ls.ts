// plumb ls [<guest>]

import type { Argv, CommandModule } from 'yargs'
import { ops, runCustom, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest?: string
}

export const lsCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'ls [guest]',
  describe: 'what plumb made: both ends, addresses, routes, leases, owner marks',
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, ['json', 'allow-host'])
      .positional('guest', { type: 'string', describe: 'only this guest' })
      .example('$0 ls', 'everything plumb made on this host')
      .example('$0 ls web --json', 'one guest, as JSON') as unknown as Argv<Args>,
  handler: (args) =>
    runCustom(
      state,
      args,
      async () => (await ops()).ls({ allowHost: args.allowHost, ...(args.guest !== undefined ? { guest: String(args.guest) } : {}) }),
      async (r) => {
        if (args.json) return state.io.out(JSON.stringify(r, null, 2))
        for (const w of r.warnings) state.io.err(`plumb: ${w}`)
        state.io.out((await ops()).formatLs(r))
      },
    ),
})

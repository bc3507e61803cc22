// plumb gc

import type { Argv, CommandModule } from 'yargs'
import { commonOptions, ops, runOp, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

export const gcCommand = (state: CliState): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'gc',
  describe: "remove plumb's leftovers whose guest is gone (OVS rows, host ends, DHCP clients, rules, empty bridges)",
  builder: (y: Argv<GlobalArgs>) => sharedFlags(y, ['json', 'dry-run', 'verbose', 'quiet']).example('$0 gc --dry-run', 'what would be removed'),
  handler: (args) => runOp(state, args, async () => (await ops()).gc(commonOptions(args, state.io))),
})

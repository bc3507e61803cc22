// plumb isolate <bridge> [--allow GUEST,GUEST]... [--del]

import type { Argv, CommandModule } from 'yargs'
import { OP_FLAGS, commonOptions, ops, runOp, sharedFlags, strings } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  bridge: string
  allow?: string[]
  del: boolean
}

export const isolateCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'isolate <bridge>',
  describe: "Docker's --icc=false for one bridge: its guests reach the host and beyond, not each other",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, OP_FLAGS)
      .positional('bridge', { type: 'string', describe: 'a Linux bridge' })
      .option('allow', { type: 'string', array: true, describe: 'GUEST,GUEST: a pair that may still talk, both ways (repeatable; Docker\'s --link)' })
      .option('del', { type: 'boolean', default: false, describe: 'lift the isolation (with --allow: remove only those pairs)' })
      .example('$0 isolate br0', 'guests on br0 cannot reach each other; later ones neither')
      .example('$0 isolate br0 --allow web,db', 'except web and db')
      .example('$0 isolate br0 --allow web,db --del', 'take the exception back')
      .example('$0 isolate br0 --del', 'lift it') as unknown as Argv<Args>,
  handler: async (args) => {
    await runOp(state, args, async () => (await ops()).isolate({ ...commonOptions(args, state.io), bridge: String(args.bridge), allow: strings(args.allow), del: args.del }))
  },
})

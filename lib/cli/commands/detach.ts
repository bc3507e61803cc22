// plumb detach <guest> [IFNAME|--all]

import type { Argv, CommandModule } from 'yargs'
import { commonOptions, OP_FLAGS, ops, runOp, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest: string
  ifname?: string
  all: boolean
}

export const detachCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'detach <guest> [ifname]',
  describe: "undo plumb's work on a guest: links, OVS ports, DHCP clients, replaced routes",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, OP_FLAGS)
      .positional('guest', { type: 'string', describe: 'the guest' })
      .positional('ifname', { type: 'string', describe: 'one interface plumb made' })
      .option('all', { type: 'boolean', default: false, describe: 'everything plumb made in the guest' })
      .example('$0 detach web eth1', 'remove eth1 (and its host end, lease, firewall rule...)')
      .example('$0 detach web --all', "remove all of plumb's work on web") as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).detach({ ...commonOptions(args, state.io), guest: String(args.guest), all: args.all, ...(args.ifname !== undefined ? { ifname: String(args.ifname) } : {}) }),
    ),
})

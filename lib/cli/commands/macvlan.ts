// plumb macvlan <guest> <parent> [IP...]

import type { Argv, CommandModule } from 'yargs'
import { linkFlags, linkOptions, ops, runOp } from '../common.js'
import type { CliState, GlobalArgs, LinkArgs } from '../common.js'

interface Args extends LinkArgs {
  parent: string
  mode: string
}

export const macvlanCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'macvlan <guest> <parent> [ips..]',
  describe: 'a macvlan child of a host NIC, born inside the guest',
  builder: (y: Argv<GlobalArgs>) =>
    linkFlags(y)
      .positional('guest', { type: 'string', describe: 'the guest' })
      .positional('parent', { type: 'string', describe: 'a host NIC (not a bridge)' })
      .positional('ips', { type: 'string', array: true, describe: 'ADDR/PREFIX[@GATEWAY], or dhcp' })
      .option('mode', { type: 'string', default: 'bridge', describe: 'bridge | private | vepa | passthru | source' })
      .example('$0 macvlan web enp3s0 198.18.1.10/24@198.18.1.1', "web gets its own MAC on the LAN behind enp3s0")
      .example('$0 macvlan web enp3s0 dhcp --mac seed:web', "an address from the LAN's DHCP server, stable across restarts") as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).macvlan({
        ...linkOptions(args, state.io),
        parent: String(args.parent),
        mode: args.mode,
      }),
    ),
})

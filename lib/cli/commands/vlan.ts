// plumb vlan <guest> <parent> <VID> [IP...]

import type { Argv, CommandModule } from 'yargs'
import { linkFlags, linkOptions, ops, runOp } from '../common.js'
import type { CliState, GlobalArgs, LinkArgs } from '../common.js'

interface Args extends LinkArgs {
  parent: string
  vid: string
}

export const vlanCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'vlan <guest> <parent> <vid> [ips..]',
  describe: 'put the guest on VLAN VID through a host NIC (802.1q), an OVS bridge (access port) or a Linux bridge',
  builder: (y: Argv<GlobalArgs>) =>
    linkFlags(y)
      .positional('guest', { type: 'string', describe: 'the guest' })
      .positional('parent', { type: 'string', describe: 'a host NIC, an OVS bridge or a Linux bridge' })
      .positional('vid', { type: 'string', describe: 'VLAN id, 1-4094' })
      .positional('ips', { type: 'string', array: true, describe: 'ADDR/PREFIX[@GATEWAY], or dhcp' })
      .example('$0 vlan web ovsbr0 10 198.18.10.2/24', 'an access port on VLAN 10 of an OVS bridge')
      .example('$0 vlan web enp3s0 20 198.18.20.2/24', 'an 802.1q sub-interface of a NIC (needs 8021q)') as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).vlan({
        ...linkOptions(args, state.io),
        parent: String(args.parent),
        vid: String(args.vid),
      }),
    ),
})

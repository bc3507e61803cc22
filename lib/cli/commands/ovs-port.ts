// plumb ovs-port <guest> <ovs-bridge> [IP...]

import type { Argv, CommandModule } from 'yargs'
import { defined, linkFlags, linkOptions, ops, runOp } from '../common.js'
import type { CliState, GlobalArgs, LinkArgs } from '../common.js'

interface Args extends LinkArgs {
  bridge: string
  hostIfname?: string
  tag?: string
  trunks?: string
  createBridge: boolean
}

export const ovsPortCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'ovs-port <guest> <bridge> [ips..]',
  describe: 'a veth whose host end is a port of an Open vSwitch bridge',
  builder: (y: Argv<GlobalArgs>) =>
    linkFlags(y)
      .positional('guest', { type: 'string', describe: 'the guest' })
      .positional('bridge', { type: 'string', describe: 'an OVS bridge' })
      .positional('ips', { type: 'string', array: true, describe: 'ADDR/PREFIX[@GATEWAY], or dhcp' })
      .option('host-ifname', { alias: 'l', type: 'string', describe: 'name of the host end / OVS port' })
      .option('tag', { type: 'string', describe: 'access port on this VLAN' })
      .option('trunks', { type: 'string', describe: 'trunk port carrying these VLANs: 10,20,30-32' })
      .option('create-bridge', { type: 'boolean', default: false, describe: 'create the OVS bridge if missing' })
      .example('$0 ovs-port web ovsbr0 198.18.10.2/24 --tag 10 --create-bridge', 'an access port on VLAN 10')
      .example('$0 ovs-port router ovsbr0 --trunks 10,20', 'a trunk port') as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).ovsPort({
        ...linkOptions(args, state.io),
        bridge: String(args.bridge),
        createBridge: args.createBridge,
        ...defined({ hostIfname: args.hostIfname, tag: args.tag, trunks: args.trunks }),
      }),
    ),
})

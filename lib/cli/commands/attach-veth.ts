// plumb attach-veth <guest> <bridge> [IP...]

import type { Argv, CommandModule } from 'yargs'
import { defined, linkFlags, linkOptions, ops, runOp } from '../common.js'
import type { CliState, GlobalArgs, LinkArgs } from '../common.js'

interface Args extends LinkArgs {
  bridge: string
  hostIfname?: string
  vlan?: string
  firewall: boolean
}

export const attachVethCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'attach-veth <guest> <bridge> [ips..]',
  describe: 'add a veth to the guest whose host end is a port of a Linux or OVS bridge',
  builder: (y: Argv<GlobalArgs>) =>
    linkFlags(y)
      .positional('guest', { type: 'string', describe: 'container NAME/ID, docker:/podman:NAME, pid:N, netns:NAME or a netns path' })
      .positional('bridge', { type: 'string', describe: 'an existing Linux/OVS bridge, or a new name (created as a Linux bridge)' })
      .positional('ips', { type: 'string', array: true, describe: 'ADDR/PREFIX[@GATEWAY] (IPv4 or IPv6), or dhcp' })
      .option('host-ifname', { alias: 'l', type: 'string', describe: 'name of the host end (default: derived, ≤ 15 bytes)' })
      .option('vlan', { type: 'string', describe: 'access VLAN: an OVS tag, or bridge VLAN filtering on a Linux bridge' })
      .option('firewall', { type: 'boolean', default: true, describe: "add an ACCEPT rule when Docker's FORWARD DROP would block the bridge (--no-firewall: don't)" })
      .example('$0 attach-veth web br0 198.18.0.10/24@198.18.0.1', 'web gets eth1 on br0 with an address and a default route')
      .example('$0 attach-veth web br0 2001:db8::10/64 -i eth2 --mtu 1400', 'an IPv6 NIC named eth2')
      .example('$0 attach-veth netns:blue br0 198.18.0.11/24 --mac seed:blue', 'an ip netns guest with a stable MAC')
      .example('$0 attach-veth web br0 dhcp', 'a lease from the LAN\'s DHCP server') as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).attachVeth({
        ...linkOptions(args, state.io),
        bridge: String(args.bridge),
        firewall: args.firewall,
        ...defined({ hostIfname: args.hostIfname, vlan: args.vlan }),
      }),
    ),
})

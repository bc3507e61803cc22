// plumb dhcp <guest> <ifname>

import type { Argv, CommandModule } from 'yargs'
import type { DhcpClient } from '../../ops/lease.js'
import { commonOptions, defined, OP_FLAGS, ops, runOp, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest: string
  ifname: string
  client: string
  timeout?: string
  hostname?: string
  resolv: boolean
  release: boolean
}

export const dhcpCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'dhcp <guest> <ifname>',
  describe: "run a real DHCP client inside the guest's netns, renewed for the guest's life",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, OP_FLAGS)
      .positional('guest', { type: 'string', describe: 'the guest' })
      .positional('ifname', { type: 'string', describe: 'an interface inside the guest' })
      .option('client', { type: 'string', default: 'auto', describe: 'auto | udhcpc | dhclient | dhcpcd' })
      .option('timeout', { type: 'string', describe: 'seconds to wait for a lease (default 10)' })
      .option('hostname', { type: 'string', describe: 'hostname to send' })
      .option('resolv', { type: 'boolean', default: false, describe: "write the offered DNS servers into the guest's own /etc/resolv.conf" })
      .option('release', { type: 'boolean', default: false, describe: 'release the lease and stop the client' })
      .example('$0 dhcp web eth1', 'a lease on eth1')
      .example('$0 dhcp web eth1 --release', 'give it back') as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).dhcp({
        ...commonOptions(args, state.io),
        guest: String(args.guest),
        ifname: String(args.ifname),
        client: args.client as DhcpClient,
        resolv: args.resolv,
        release: args.release,
        ...defined({ hostname: args.hostname, timeout: args.timeout }),
      }),
    ),
})

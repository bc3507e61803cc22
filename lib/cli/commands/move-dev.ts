// plumb move-dev <guest> <host-if> [IP...]

import type { Argv, CommandModule } from 'yargs'
import { dhcpFlags, linkOptions, OP_FLAGS, ops, runOp, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs, LinkArgs } from '../common.js'

interface Args extends LinkArgs {
  device: string
  force: boolean
}

export const moveDevCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'move-dev <guest> <device> [ips..]',
  describe: 'move a host interface into the guest; detach gives it back under its old name',
  builder: (y: Argv<GlobalArgs>) =>
    dhcpFlags(sharedFlags(y, OP_FLAGS))
      .positional('guest', { type: 'string', describe: 'the guest' })
      .positional('device', { type: 'string', describe: 'a host interface' })
      .positional('ips', { type: 'string', array: true, describe: 'ADDR/PREFIX[@GATEWAY], or dhcp' })
      .option('ifname', { alias: 'i', type: 'string', describe: 'its name in the guest (default: keep its name)' })
      .option('route', { type: 'string', array: true, describe: 'extra route DST[@GW] (repeatable)' })
      .option('force', { type: 'boolean', default: false, describe: "move it even if it carries the host's default route" })
      .option('replace-gateway', { type: 'boolean', default: false, describe: 'replace an existing default route' })
      .example('$0 move-dev web enp4s0 198.18.3.10/24 -i eth1', 'give web a NIC of its own') as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).moveDev({
        ...linkOptions(args, state.io),
        device: String(args.device),
        force: args.force,
      }),
    ),
})

// plumb vxlan <bridge> --vni N --remote ADDR[,ADDR...] [--local ADDR] [--dev IFNAME] [--dstport PORT] [--del]

import type { Argv, CommandModule } from 'yargs'
import { commonOptions, defined, ops, runOp, sharedFlags, strings } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  bridge: string
  vni: string
  remote?: string[]
  local?: string
  dev?: string
  dstport?: string
  del: boolean
}

export const vxlanCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'vxlan <bridge>',
  describe: "join a local Linux bridge to the same VNI's bridges on other hosts (a VXLAN port, static flood entries)",
  builder: (y: Argv<GlobalArgs>) =>
    // a host-side op: no guest, so no --allow-host
    sharedFlags(y, ['json', 'dry-run', 'verbose', 'quiet'])
      .positional('bridge', { type: 'string', describe: 'a Linux bridge (created and marked plumb\'s when missing)' })
      .option('vni', { type: 'string', demandOption: true, describe: 'the VXLAN network id, 1..16777215 (the same on every host)' })
      .option('remote', { type: 'string', array: true, describe: "the other hosts' underlay addresses (repeatable, or comma-separated)" })
      .option('local', { type: 'string', describe: "this host's underlay address (default: the route's source address)" })
      .option('dev', { type: 'string', describe: 'the underlay interface (default: the one of the route to the remotes)' })
      .option('dstport', { type: 'string', describe: 'UDP port (default 4789)' })
      .option('del', { type: 'boolean', default: false, describe: 'remove these remotes; without --remote, the whole VXLAN port' })
      .example('$0 vxlan br0 --vni 42 --remote 198.18.20.2,198.18.20.3', 'br0 and the VNI-42 bridges of two other hosts are one L2 segment')
      .example('$0 vxlan br0 --vni 42 --remote 198.18.20.4', 'a fourth host joins')
      .example('$0 vxlan br0 --vni 42 --remote 198.18.20.3 --del', 'cut exactly that host off')
      .example('$0 vxlan br0 --vni 42 --del', 'leave the overlay') as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).vxlan({
        ...commonOptions(args, state.io),
        bridge: String(args.bridge),
        vni: args.vni,
        remotes: strings(args.remote),
        del: args.del,
        ...defined({ local: args.local, dev: args.dev, dstport: args.dstport }),
      }),
    ),
})

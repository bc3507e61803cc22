// plumb masquerade <bridge|CIDR> [--out IFNAME] [--del]

import type { Argv, CommandModule } from 'yargs'
import { commonOptions, defined, ops, runOp, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  source: string
  out?: string
  del: boolean
}

export const masqueradeCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'masquerade <source>',
  describe: "outbound NAT for a bridge's guests (or a CIDR): MASQUERADE, forwarding through FORWARD DROP, ip_forward on",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, ['json', 'dry-run', 'verbose', 'quiet'])
      .positional('source', { type: 'string', describe: 'a bridge (its IPv4 subnets) or an IPv4 CIDR' })
      .option('out', { type: 'string', describe: 'only traffic leaving through this interface (default: everything not on the bridge)' })
      .option('del', { type: 'boolean', default: false, describe: 'undo it (ip_forward goes back only if plumb turned it on and nothing of plumb needs it)' })
      .example('$0 masquerade br0', "br0's guests reach beyond the host with the host's address")
      .example('$0 masquerade 198.18.0.0/24 --out enp3s0', 'only out of enp3s0')
      .example('$0 masquerade br0 --del', 'undo') as unknown as Argv<Args>,
  handler: async (args) => {
    await runOp(state, args, async () => (await ops()).masquerade({ ...commonOptions(args, state.io), source: String(args.source), del: args.del, ...defined({ out: args.out }) }))
  },
})

// plumb p2p-link <guest> <guest|host>

import type { Argv, CommandModule } from 'yargs'
import { commonOptions, defined, OP_FLAGS, ops, runOp, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  a: string
  b: string
  ipA?: string
  ipB?: string
  ifnameA?: string
  ifnameB?: string
  macA?: string
  macB?: string
  mtu?: string
}

export const p2pLinkCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'p2p-link <a> <b>',
  describe: 'a veth pair whose ends are born in two guests (or a guest and the host)',
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, OP_FLAGS)
      .positional('a', { type: 'string', describe: 'the first guest' })
      .positional('b', { type: 'string', describe: 'the second guest, or host' })
      .option('ip-a', { type: 'string', describe: "CIDR for a's end (/31, or /32 with a peer route)" })
      .option('ip-b', { type: 'string', describe: "CIDR for b's end" })
      .option('ifname-a', { type: 'string', describe: "name of a's end (default: first free ethN)" })
      .option('ifname-b', { type: 'string', describe: "name of b's end" })
      .option('mac-a', { type: 'string', describe: "MAC of a's end: aa:bb:cc:dd:ee:ff or seed:STRING" })
      .option('mac-b', { type: 'string', describe: "MAC of b's end" })
      .option('mtu', { type: 'string', describe: 'MTU of both ends (default 1500)' })
      .example('$0 p2p-link web db --ip-a 198.18.5.0/31 --ip-b 198.18.5.1/31', 'a direct link, no bridge')
      .example('$0 p2p-link web host --ip-a 198.18.6.2/32 --ip-b 198.18.6.1/32', 'a link to the host, with peer routes') as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).p2pLink({
        ...commonOptions(args, state.io),
        a: String(args.a),
        b: String(args.b),
        ...defined({ ipA: args.ipA, ipB: args.ipB, ifnameA: args.ifnameA, ifnameB: args.ifnameB, macA: args.macA, macB: args.macB, mtu: args.mtu }),
      }),
    ),
})

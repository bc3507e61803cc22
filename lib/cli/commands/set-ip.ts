// plumb set-ip <guest> <ifname> <IP>... [--del] [--route DST[@GW]]...

import type { Argv, CommandModule } from 'yargs'
import { commonOptions, OP_FLAGS, ops, runOp, sharedFlags, strings } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest: string
  ifname: string
  ips?: string[]
  del: boolean
  route?: string[]
  replaceGateway: boolean
}

export const setIpCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'set-ip <guest> <ifname> [ips..]',
  describe: 'add (or --del remove) addresses and routes on an interface already in the guest',
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, OP_FLAGS)
      .positional('guest', { type: 'string', describe: 'the guest' })
      .positional('ifname', { type: 'string', describe: 'an interface inside the guest' })
      .positional('ips', { type: 'string', array: true, describe: 'ADDR/PREFIX[@GATEWAY]' })
      .option('del', { type: 'boolean', default: false, describe: 'remove the addresses and routes instead' })
      .option('route', { type: 'string', array: true, describe: 'route DST[@GW] via this interface (repeatable)' })
      .option('replace-gateway', { type: 'boolean', default: false, describe: 'replace an existing default route' })
      .example('$0 set-ip web eth1 2001:db8::10/64@2001:db8::1', 'add an IPv6 address and default route')
      .example('$0 set-ip web eth1 --route 198.19.0.0/16@198.18.0.254', 'add a route')
      .example('$0 set-ip web eth1 198.18.0.10/24 --del', 'remove an address') as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).setIp({
        ...commonOptions(args, state.io),
        guest: String(args.guest),
        ifname: String(args.ifname),
        ips: strings(args.ips),
        routes: strings(args.route),
        del: args.del,
        replaceGateway: args.replaceGateway,
      }),
    ),
})

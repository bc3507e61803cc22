// plumb sysctl <guest> KEY=VALUE...   |   plumb sysctl <guest> [KEY...] --del

import type { Argv, CommandModule } from 'yargs'
import { commonOptions, OP_FLAGS, ops, runOp, sharedFlags, strings } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest: string
  settings?: string[]
  del: boolean
}

export const sysctlCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'sysctl <guest> [settings..]',
  describe: "set a guest's per-netns sysctls (net.ipv4.ip_forward, net.ipv4.conf.IF.KEY, net.ipv6.conf.IF.KEY ...); --del puts back the values plumb found",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, OP_FLAGS)
      .positional('guest', { type: 'string', describe: 'the guest' })
      .positional('settings', { type: 'string', array: true, describe: 'KEY=VALUE (with --del: KEY, or nothing for all of plumb\'s)' })
      .option('del', { type: 'boolean', default: false, describe: 'put back the values plumb found' })
      .epilog('Only keys of the guest\'s own network namespace: net.ipv4.*, net.ipv6.* (but for the few the kernel keeps host-wide, e.g. tcp_mem), net.netfilter.*, net.core.somaxconn, net.unix.max_dgram_qlen. kernel.*, vm.*, fs.* and the rest of net.core are the host\'s: exit 2.')
      .example('$0 sysctl router net.ipv4.ip_forward=1', 'make a guest a router')
      .example('$0 sysctl web net.ipv4.conf.eth1.rp_filter=2 net.ipv6.conf.eth1.disable_ipv6=0', 'per-interface keys')
      .example('$0 sysctl router net.ipv4.ip_forward --del', 'back to the value plumb found') as unknown as Argv<Args>,
  handler: (args) => runOp(state, args, async () => (await ops()).sysctl({ ...commonOptions(args, state.io), guest: String(args.guest), settings: strings(args.settings), del: args.del })),
})

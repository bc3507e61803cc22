// plumb expose <guest> <PORTSPEC>... [--to ADDR] [--del]   |   plumb expose <guest> --all [--del]

import type { Argv, CommandModule } from 'yargs'
import { OP_FLAGS, commonOptions, defined, ops, runOp, sharedFlags, strings } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest: string
  ports?: string[]
  all: boolean
  to?: string
  del: boolean
}

export const exposeCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'expose <guest> [ports..]',
  describe: "publish a guest's port on the host (Docker's -p / -P for a running guest)",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, OP_FLAGS)
      .positional('guest', { type: 'string', describe: 'the guest' })
      .positional('ports', { type: 'string', array: true, describe: '[[HOSTIP:][HOSTPORT]:]PORT[/tcp|/udp], as docker run -p' })
      .option('all', { type: 'boolean', default: false, describe: "every port of the container image's EXPOSE list, host ports chosen (-P)" })
      .option('to', { type: 'string', describe: "the guest address (default: its first IPv4 address on an interface plumb made)" })
      .option('del', { type: 'boolean', default: false, describe: 'unpublish (a PORTSPEC without a host port removes the one chosen for it)' })
      .example('$0 expose web 8080:80', 'every host address, port 8080, to web port 80')
      .example('$0 expose web 127.0.0.1::80', 'only 127.0.0.1, a host port chosen from ip_local_port_range (printed)')
      .example('$0 expose dns 5353:53/udp', 'UDP')
      .example('$0 expose web --all', "the image's EXPOSE list")
      .example('$0 expose web 8080:80 --del', 'unpublish') as unknown as Argv<Args>,
  handler: async (args) => {
    await runOp(state, args, async () => (await ops()).expose({ ...commonOptions(args, state.io), guest: String(args.guest), ports: strings(args.ports), all: args.all, del: args.del, ...defined({ to: args.to }) }))
  },
})

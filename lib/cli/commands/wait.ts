// plumb wait <guest|self> [IFNAME] [--timeout S] [--print-sh]

import type { Argv, CommandModule } from 'yargs'
import { defined, ops, runCustom, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest: string
  ifname?: string
  timeout?: string
  printSh: boolean
}

export const waitCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'wait <guest> [ifname]',
  describe: 'wait until IFNAME (default eth1) is up and has an address',
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, ['json', 'quiet'])
      .positional('guest', { type: 'string', describe: 'the guest, or self (inside a container)' })
      .positional('ifname', { type: 'string', describe: 'default eth1' })
      .option('timeout', { type: 'string', describe: 'seconds (default 30)' })
      .option('print-sh', { type: 'boolean', default: false, describe: "print a dependency-free sh loop for an image's entrypoint" })
      .example('$0 wait web eth1 --timeout 10', 'from the host')
      .example('$0 wait self --print-sh > /wait-net.sh', 'for an entrypoint: sh /wait-net.sh && exec app') as unknown as Argv<Args>,
  handler: (args) => {
    if (args.printSh) {
      return runCustom(state, args, async () => (await ops()).waitScript(args.ifname ?? 'eth1', args.timeout), (script) => state.io.out(script))
    }
    return runCustom(
      state,
      args,
      async () => (await ops()).waitFor({ guest: String(args.guest), ...defined({ timeout: args.timeout, ifname: args.ifname }) }),
      (r) => state.io.out(args.json ? JSON.stringify(r) : args.quiet ? '' : `${r.ifname} in ${r.guest} is up: ${r.addresses.join(', ')} (waited ${r.waitedMs} ms)`),
    )
  },
})

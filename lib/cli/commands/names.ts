// plumb names <guest> [--hostname NAME] [--add-host NAME:ADDR]... [--dns ADDR]... [--dns-search D]... [--dns-option OPT]... [--del]

import type { Argv, CommandModule } from 'yargs'
import { commonOptions, defined, OP_FLAGS, ops, runOp, sharedFlags, strings } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  guest: string
  hostname?: string
  addHost?: string[]
  dns?: string[]
  dnsSearch?: string[]
  dnsOption?: string[]
  del: boolean
}

export const namesCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'names <guest>',
  describe: "Docker's -h, --add-host, --dns, --dns-search, --dns-option on a running guest: its own /etc/hosts, /etc/hostname, /etc/resolv.conf",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, OP_FLAGS)
      .positional('guest', { type: 'string', describe: 'the guest (a container, pid:N with its own mount namespace, or netns:NAME: /etc/netns/NAME)' })
      .option('hostname', { type: 'string', describe: "the guest's hostname (/etc/hostname and its UTS namespace)" })
      .option('add-host', { type: 'string', array: true, describe: 'NAME:ADDR, a line in /etc/hosts (repeatable)' })
      .option('dns', { type: 'string', array: true, describe: "a nameserver for /etc/resolv.conf, replacing the guest's own (repeatable)" })
      .option('dns-search', { type: 'string', array: true, describe: 'a search domain (repeatable)' })
      .option('dns-option', { type: 'string', array: true, describe: 'a resolv.conf option, e.g. ndots:2 (repeatable)' })
      .option('del', { type: 'boolean', default: false, describe: "remove plumb's edits: those given, or all of them" })
      .epilog("plumb's /etc/hosts lines end in `# plumb`, its resolv.conf lines sit in a `# plumb: begin` block (the lines it overrides stay in the file, commented `# plumb-replaced:`). --del and detach --all remove only those and bring back what they replaced. The host's own files are never written.")
      .example('$0 names web --hostname web --add-host db:198.18.0.5', 'a hostname and a hosts entry')
      .example('$0 names web --dns 198.18.0.53 --dns-search lab.example --dns-option ndots:2', "the guest's resolver")
      .example('$0 exec --mount web -- cat /etc/hosts', "read the guest's file back")
      .example('$0 names web --del', "remove all of plumb's name edits") as unknown as Argv<Args>,
  handler: (args) =>
    runOp(state, args, async () =>
      (await ops()).names({
        ...commonOptions(args, state.io),
        guest: String(args.guest),
        addHosts: strings(args.addHost),
        dns: strings(args.dns),
        dnsSearch: strings(args.dnsSearch),
        dnsOptions: strings(args.dnsOption),
        del: args.del,
        ...defined({ hostname: args.hostname === undefined ? undefined : String(args.hostname) }),
      }),
    ),
})

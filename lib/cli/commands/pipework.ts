// plumb pipework ARGS...: pipework's own command lines (its README's forms), done by plumb.

import type { Argv, CommandModule } from 'yargs'
import { renderResult } from '../render.js'
import { commonOptions, OP_FLAGS, ops, runCustom, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  args?: string[]
}

/** plumb's own flags, which may sit anywhere on the line; everything else is pipework's, in its order. */
const GLOBAL_FLAGS = new Set(['--json', '--dry-run', '--verbose', '-v', '--quiet', '-q', '--allow-host'])

/** The words after `pipework`, exactly as typed (yargs would reorder pipework's -i/-l flags). */
export function pipeworkWords(argv: string[]): string[] {
  const at = argv.indexOf('pipework')
  const rest = argv.slice(at + 1)
  const dd = rest.indexOf('--')
  return rest.filter((w, i) => !(GLOBAL_FLAGS.has(w) && (dd < 0 || i < dd)) && !(i === dd))
}

export const pipeworkCommand = (state: CliState, argv: string[]): CommandModule<GlobalArgs, Args> => ({
  command: 'pipework [args..]',
  describe: "pipework's command lines, done through plumb's operations (transactions, undone by detach)",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, OP_FLAGS)
      .strict(false)
      .parserConfiguration({ 'unknown-options-as-args': true })
      .positional('args', { type: 'string', array: true, describe: 'what you would have given pipework' })
      .epilog('Each form prints the plumb command it is (see the README\'s table). Differences: every form is a transaction undone by `plumb detach GUEST IFNAME`; a bridge is brought up; @GW replaces the default route and detach restores it; dhcp runs plumb\'s supervised client (renewed for the guest\'s life); route/rule/tc run the host\'s ip/tc in the guest\'s netns.')
      .example('$0 pipework br1 web 198.18.1.1/24@198.18.1.254', 'a veth on Linux bridge br1 (created if missing)')
      .example('$0 pipework ovsbr0 -i eth2 web dhcp @10', 'an OVS access port on VLAN 10, address by DHCP')
      .example('$0 pipework eth2 web 198.18.2.5/24 U:web', "a macvlan child of eth2 with pipework's MAC for the string web")
      .example('$0 pipework --direct-phys eth3 -i eth1 web 0/0', 'move eth3 into web, no address')
      .example('$0 pipework route web add 198.19.0.0/16 via 198.18.1.254', 'ip route in the guest') as unknown as Argv<Args>,
  handler: (args) =>
    runCustom(
      state,
      args,
      async () => (await ops()).pipework({ ...commonOptions(args, state.io), argv: pipeworkWords(argv), stdio: args.json ? 'pipe' : 'inherit' }),
      (r) => {
        if (r.kind === 'link') {
          if (!args.json && !args.quiet) state.io.out(`# ${r.plumb}`)
          renderResult(r.result, args, state.io)
          return
        }
        if (r.kind === 'exec') {
          if (args.json) state.io.out(JSON.stringify({ plumb: r.plumb, ...r.result }, null, 2))
          state.exitCode = r.result.exitCode
          return
        }
        state.io.out(args.json ? JSON.stringify({ plumb: r.plumb, ...r.result }) : args.quiet ? '' : `${r.result.ifname} is up: ${r.result.addresses.join(', ')} (waited ${r.result.waitedMs} ms)`)
      },
    ),
})

// plumb doctor

import type { Argv, CommandModule } from 'yargs'
import { ops, runCustom, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

export const doctorCommand = (state: CliState): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'doctor',
  describe: 'what this host supports: link kinds, OVS, DHCP clients, Docker/Podman, the firewall, the setns addon',
  builder: (y: Argv<GlobalArgs>) => sharedFlags(y, ['json']).example('$0 doctor', 'check this host'),
  handler: (args) =>
    runCustom(state, args, async () => (await ops()).doctor(), async (r) => {
      state.io.out(args.json ? JSON.stringify(r, null, 2) : (await ops()).formatDoctor(r))
      // A host that can't run plumb at all is "unsupported here".
      if (!r.ok) state.exitCode = 5
    }),
})

// plumb replay <guest>

import type { Argv, CommandModule } from 'yargs'
import { commonOptions, ops, runCustom, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'
import { renderError, renderResult } from '../render.js'

interface Args extends GlobalArgs {
  guest: string
}

export const replayCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'replay <guest>',
  describe: "re-apply the recorded plumbing of a container now (after it restarted: same names, addresses, MACs)",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, ['json', 'dry-run', 'verbose', 'quiet', 'allow-host'])
      .positional('guest', { type: 'string', describe: 'a Docker or Podman container' })
      .example('$0 replay web', "what plumb did to web, done again in its new netns (what is there is left alone)")
      .example('$0 replay web --dry-run', 'the steps a replay would take') as unknown as Argv<Args>,
  handler: (args) =>
    runCustom(
      state,
      args,
      async () => {
        const { ReplayError, replay } = await ops()
        try {
          return { result: await replay({ ...commonOptions(args, state.io), guest: String(args.guest) }) }
        } catch (err) {
          // some entries failed: what the others did is output too, then the failure and its code
          if (err instanceof ReplayError) return { result: err.result, error: err }
          throw err
        }
      },
      ({ result, error }) => {
        renderResult(result, args, state.io)
        if (error) state.exitCode = renderError(error, args, state.io)
      },
    ),
})

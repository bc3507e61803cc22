// plumb watch [--once]

import type { Argv, CommandModule } from 'yargs'
import { usageError } from '../../errors.js'
import type { EngineName } from '../../guest/types.js'
import { ops, runCustom, sharedFlags, strings } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'

interface Args extends GlobalArgs {
  once: boolean
  engine?: string[]
}

const ENGINES: EngineName[] = ['docker', 'podman']

export const watchCommand = (state: CliState): CommandModule<GlobalArgs, Args> => ({
  command: 'watch',
  describe: "follow the engine's container events and re-plumb each container when it starts (a restart empties its netns)",
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, ['json', 'verbose', 'quiet'])
      .option('once', { type: 'boolean', default: false, describe: 'replay every running container with a record, forget removed ones, and exit' })
      .option('engine', { type: 'string', array: true, describe: 'docker (default) and/or podman' })
      .example('$0 watch', 'run for ever (packaging/plumb-watch.service runs it under systemd)')
      .example('$0 watch --once', 'catch up once, e.g. from a boot script') as unknown as Argv<Args>,
  handler: (args) =>
    runCustom(
      state,
      args,
      async () => {
        const engines = strings(args.engine)
        for (const e of engines) if (!(ENGINES as string[]).includes(e)) throw usageError(`unknown engine "${e}" (--engine)`, 'docker or podman')
        const { watch } = await ops()
        const stop = new AbortController()
        const onSignal = (): void => stop.abort()
        process.once('SIGTERM', onSignal)
        process.once('SIGINT', onSignal)
        try {
          return await watch({
            once: args.once,
            ...(engines.length ? { engines: engines as EngineName[] } : {}),
            signal: stop.signal,
            // one line per action: stdout is the watch's output (journald keeps it under systemd)
            ...(args.json || args.quiet ? {} : { log: (line: string) => state.io.out(line) }),
            ...(args.json ? { onReplay: (r) => state.io.out(JSON.stringify({ time: new Date(r.endedAt).toISOString(), engine: r.engine, id: r.id, guest: r.result?.guest, trigger: r.trigger, ms: Math.round(r.ms), entries: r.result?.entries, ...(r.error ? { error: r.error } : {}) })) } : {}),
            ...(args.verbose ? { verbose: (line: string) => state.io.err(`+ ${line}`) } : {}),
          })
        } finally {
          process.off('SIGTERM', onSignal)
          process.off('SIGINT', onSignal)
        }
      },
      (summary) => {
        if (args.once && !args.json && !args.quiet) state.io.out(`watch --once: ${summary.replays} replayed, ${summary.failed} failed, ${summary.forgotten} records forgotten`)
        // a container that could not be replayed is the exit code of --once (the long-running watch carries on)
        if (summary.failed > 0) state.exitCode = 1
      },
    ),
})

// plumb lab deploy|check|destroy|inspect|graph <file>: lab files (LAB.md). lib/lab is loaded only
// when a lab command's handler runs (ops().lab()).

import type { Argv, CommandModule } from 'yargs'
import { usageError } from '../../errors.js'
import { ops, runCustom, sharedFlags } from '../common.js'
import type { CliState, GlobalArgs } from '../common.js'
import { processIo } from '../io.js'
import type { CliIo } from '../io.js'

const lab = async () => (await ops()).lab()

interface FileArgs extends GlobalArgs {
  file: string
}
interface CheckArgs extends FileArgs {
  format?: string
  out?: string
  timeout?: number
}
interface GraphArgs extends FileArgs {
  format?: string
  out?: string
}

async function writeOut(file: string, text: string): Promise<void> {
  const { writeFile } = await import('node:fs/promises')
  await writeFile(file, text)
}

/** A line per node/link on a pipe or log, a bar on a terminal; nothing with --quiet or --json. */
async function progressFor(args: GlobalArgs, io: CliIo) {
  if (args.quiet || args.json || args.dryRun) return undefined
  const { barRenderer, lineRenderer } = await lab()
  const write = (s: string): void => void process.stderr.write(s)
  // Through the io when it is not the process's (tests): lines, never the bar.
  if (io.err !== processIo.err) return lineRenderer((s) => io.err(s.replace(/\n$/, '')))
  return process.stderr.isTTY ? barRenderer(write) : lineRenderer(write)
}

function runOptions(args: GlobalArgs, io: CliIo) {
  return {
    dryRun: args.dryRun,
    ...(args.persist === false ? { persist: false } : {}),
    ...(args.verbose ? { log: (line: string) => io.err(`+ ${line}`) } : {}),
  }
}

function renderLabResult(state: CliState, args: GlobalArgs) {
  return (r: import('../../lab/index.js').LabResult): void => {
    if (args.json) return state.io.out(JSON.stringify(r, null, 2))
    for (const w of r.warnings) state.io.err(`warning: ${w}`)
    if (r.dryRun) return state.io.out(r.plan.length ? r.plan.join('\n') : `# nothing to do: ${r.messages.join('; ')}`)
    if (args.quiet) return
    for (const m of r.messages) state.io.out(m)
  }
}

const fileArg = <T>(y: Argv<T>) => y.positional('file', { type: 'string', describe: 'the lab file (YAML: LAB.md)' })

export const labCommand = (state: CliState): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'lab <command>',
  describe: 'lab files: deploy, check (grade), destroy, inspect, graph a topology',
  builder: (y: Argv<GlobalArgs>) =>
    sharedFlags(y, [])
      .command({
        command: 'deploy <file>',
        describe: 'build the lab (reconciles: a second deploy changes nothing)',
        builder: (b: Argv<GlobalArgs>) => fileArg(sharedFlags(b, ['json', 'dry-run', 'verbose', 'quiet', 'persist'])).example('$0 lab deploy lesson12.yml', 'start its containers, make its bridges and links') as unknown as Argv<FileArgs>,
        handler: async (args: FileArgs) => {
          const onProgress = await progressFor(args, state.io)
          await runCustom(state, args, async () => (await lab()).deployLab(String(args.file), { ...runOptions(args, state.io), ...(onProgress ? { onProgress } : {}) }), renderLabResult(state, args))
        },
      } as CommandModule<GlobalArgs, FileArgs>)
      .command({
        command: 'check <file>',
        describe: 'grade the lab as it is (deployed or built by hand): exit 0 all passed, 1 some failed, 2 bad file',
        builder: (b: Argv<GlobalArgs>) =>
          fileArg(sharedFlags(b, ['json', 'quiet']))
            .option('format', { type: 'string', choices: ['text', 'tap', 'junit', 'json'], describe: 'report format (default text; --json means json)' })
            .option('out', { type: 'string', describe: 'write the report to FILE (the score still goes to stdout)' })
            .option('timeout', { type: 'number', describe: 'seconds a reachability check retries, and a must-not-reach window (default 5)' })
            .example('$0 lab check lesson12.yml', 'one line per check, then the score')
            .example('$0 lab check lesson12.yml --format junit --out report.xml', 'for a CI') as unknown as Argv<CheckArgs>,
        handler: (args: CheckArgs) =>
          runCustom(
            state,
            args,
            async () => {
              const l = await lab()
              if (args.timeout !== undefined && !(args.timeout > 0)) throw usageError(`--timeout ${args.timeout}: give a positive number of seconds`)
              const report = await l.checkLab(String(args.file), { ...(args.timeout !== undefined ? { timeout: args.timeout } : {}) })
              const format = (args.format ?? (args.json ? 'json' : 'text')) as import('../../lab/index.js').CheckFormat
              const text = l.formatReport(report, format)
              if (args.out !== undefined) await writeOut(args.out, text)
              return { report, text }
            },
            ({ report, text }) => {
              if (args.out === undefined) state.io.out(text.replace(/\n$/, ''))
              else if (!args.quiet) state.io.out(`score ${report.score}/${report.total} (report in ${args.out})`)
              // CLI.md: 0 every check passed, 1 at least one failed.
              state.exitCode = report.checks.every((c) => c.ok) ? 0 : 1
            },
          ),
      } as CommandModule<GlobalArgs, CheckArgs>)
      .command({
        command: 'destroy <file>',
        describe: 'remove everything the lab made, and nothing else (idempotent)',
        builder: (b: Argv<GlobalArgs>) => fileArg(sharedFlags(b, ['json', 'dry-run', 'verbose', 'quiet'])).example('$0 lab destroy lesson12.yml', 'containers, netns, links, bridges, rules of the lab') as unknown as Argv<FileArgs>,
        handler: async (args: FileArgs) => {
          const onProgress = await progressFor(args, state.io)
          await runCustom(state, args, async () => (await lab()).destroyLab(String(args.file), { ...runOptions(args, state.io), ...(onProgress ? { onProgress } : {}) }), renderLabResult(state, args))
        },
      } as CommandModule<GlobalArgs, FileArgs>)
      .command({
        command: 'inspect <file>',
        describe: 'the lab\'s nodes as they are now: containers/netns, interfaces, addresses',
        builder: (b: Argv<GlobalArgs>) => fileArg(sharedFlags(b, ['json'])) as unknown as Argv<FileArgs>,
        handler: (args: FileArgs) =>
          runCustom(
            state,
            args,
            async () => {
              const l = await lab()
              const r = await l.inspectLab(String(args.file))
              return args.json ? JSON.stringify(r, null, 2) : l.formatInspect(r)
            },
            (text) => state.io.out(text),
          ),
      } as CommandModule<GlobalArgs, FileArgs>)
      .command({
        command: 'graph <file>',
        describe: 'draw the topology: Mermaid, DOT, or SVG (through Graphviz)',
        builder: (b: Argv<GlobalArgs>) =>
          // its output is the drawing: no --json
          fileArg(sharedFlags(b, []))
            .option('format', { type: 'string', choices: ['mermaid', 'dot', 'svg'], default: 'mermaid', describe: 'output format' })
            .option('out', { type: 'string', describe: 'write to FILE instead of stdout' })
            .example('$0 lab graph lesson12.yml --format svg --out lesson12.svg', 'a picture for the handout') as unknown as Argv<GraphArgs>,
        handler: (args: GraphArgs) =>
          runCustom(
            state,
            args,
            async () => {
              const text = await (await lab()).graphLab(String(args.file), (args.format ?? 'mermaid') as import('../../lab/index.js').GraphFormat)
              if (args.out !== undefined) await writeOut(args.out, text)
              return text
            },
            (text) => {
              if (args.out === undefined) state.io.out(text.replace(/\n$/, ''))
            },
          ),
      } as CommandModule<GlobalArgs, GraphArgs>)
      .demandCommand(1, 'give a lab command: deploy, check, destroy, inspect or graph')
      .example('$0 lab deploy lesson12.yml && $0 lab check lesson12.yml', 'build, then grade') as unknown as Argv<GlobalArgs>,
  handler: () => undefined,
})

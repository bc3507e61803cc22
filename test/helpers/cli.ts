// Runs the built CLI (dist/plumb.cjs) as a user would, for tests of argv parsing, output and exit codes.

import { execa } from 'execa'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import './env.js'

/** dist/test/helpers/cli.js -> dist/plumb.cjs (PLUMB_BIN overrides, e.g. to test an installed copy). */
export const PLUMB_BIN = process.env.PLUMB_BIN ?? fileURLToPath(new URL('../../plumb.cjs', import.meta.url))

/**
 * The command as users run it: dist/plumb beside PLUMB_BIN, the launcher that starts node from
 * the ops blob (~2x faster than node running PLUMB_BIN from the code cache, which is what gives
 * the suite its coverage).
 */
export const LAUNCHER = join(dirname(PLUMB_BIN), 'plumb')

/**
 * Our environment without NODE_V8_COVERAGE: for runs of the launcher, which would write only
 * counts of whole functions (the blob's code has no block counters) and pay for writing them.
 */
const { NODE_V8_COVERAGE: _coverage, ...uncovered } = process.env
export const UNCOVERED_ENV: NodeJS.ProcessEnv = uncovered

export interface CliResult {
  exitCode: number
  stdout: string
  stderr: string
  /** with --json: stdout parsed, or (for errors) the JSON object on stderr; undefined if neither parses */
  // Shapes differ per command; tests assert on fields, so keep this loose.
  json?: any
}

function parseJson(text: string): unknown {
  const s = text.trim()
  if (!s) return undefined
  try {
    return JSON.parse(s)
  } catch {
    // stderr may carry verbose lines before the error object: take the last line that parses.
    for (const line of s.split('\n').reverse()) {
      if (!line.startsWith('{')) continue
      try {
        return JSON.parse(line)
      } catch {
        /* keep looking */
      }
    }
    return undefined
  }
}

/**
 * `node dist/plumb.cjs ...args`, never throwing on a non-zero exit. `netns`: run it inside that
 * ip netns (nsenter --net only), which plumb then takes for its host; `env`: added to ours;
 * `launcher`: run LAUNCHER instead, without coverage (for tests that run plumb hundreds of times,
 * whose point is what plumb does, not which of its lines ran).
 */
export async function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string; timeout?: number; netns?: string; launcher?: boolean } = {}): Promise<CliResult> {
  const run = opts.launcher ? [LAUNCHER, ...args] : [process.execPath, PLUMB_BIN, ...args]
  const [cmd, argv] = opts.netns ? ['nsenter', [`--net=/run/netns/${opts.netns}`, '--', ...run]] : [run[0]!, run.slice(1)]
  const res = await execa(cmd, argv, {
    reject: false,
    timeout: opts.timeout ?? 60_000,
    ...(opts.launcher ? { env: { ...UNCOVERED_ENV, ...opts.env }, extendEnv: false } : opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
  })
  const stdout = String(res.stdout ?? '')
  const stderr = String(res.stderr ?? '')
  const result: CliResult = { exitCode: res.exitCode ?? -1, stdout, stderr }
  if (args.includes('--json')) {
    const json = parseJson(stdout) ?? parseJson(stderr)
    if (json !== undefined) result.json = json
  }
  return result
}

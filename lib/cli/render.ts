// Renders op results and errors: a short human summary, or stable JSON with --json.

import { PlumbError, asPlumbError } from '../errors.js'
import type { OpResult } from '../ops/result.js'
import type { CliIo } from './io.js'

export interface RenderFlags {
  json?: boolean
  quiet?: boolean
  dryRun?: boolean
  /** an error that is not a PlumbError (a bug) comes with its stack */
  verbose?: boolean
}

export function renderResult(result: OpResult, flags: RenderFlags, io: CliIo): void {
  if (flags.json) {
    io.out(JSON.stringify(result, null, 2))
    return
  }
  // Diagnostics, not data: to stderr, and even with --quiet or --dry-run.
  for (const w of result.warnings ?? []) io.err(`plumb: ${w}`)
  if (result.dryRun) {
    io.out(result.plan.length ? result.plan.join('\n') : `# nothing to do: ${result.messages.join('; ') || 'already so'}`)
    return
  }
  if (flags.quiet) return
  for (const line of result.messages) io.out(line)
}

export function renderError(err: unknown, flags: RenderFlags, io: CliIo): number {
  const perr = asPlumbError(err)
  if (flags.json) {
    io.err(JSON.stringify({ error: perr.toJSON() }))
    return perr.exitCode
  }
  io.err(`plumb: ${perr.message}`)
  if (perr.rolledBack?.length) io.err(`rolled back: ${perr.rolledBack.join('; ')}`)
  if (perr.hint) io.err(`hint: ${perr.hint}`)
  if (!(err instanceof PlumbError) && flags.verbose && err instanceof Error) io.err(err.stack ?? '')
  return perr.exitCode
}

// The transaction every op runs in: steps apply in order, each pushes its inverse, and a
// failure undoes the done steps in reverse and re-throws the original error (pyroute2 style).

import { PlumbError, asPlumbError } from '../errors.js'
import { Journal, selfIdentity, writerTag } from './journal.js'
import type { Intent, JournalSpec } from './journal.js'

export interface TxOptions {
  /** render the steps as `ip`/`ovs-vsctl` lines and change nothing */
  dryRun?: boolean
  /** called with each step's line (and its time) as it runs: --verbose */
  log?: (line: string) => void
  /** what the op's journal entry says it is and which guests it works on (see ./journal.ts) */
  journal?: JournalSpec
}

/** One step of a batch: as step()'s arguments. */
export interface BatchStep<T> {
  line: string
  run: () => Promise<T>
  undo?: { line: string; run: (result: T) => Promise<unknown> }
}

interface Undo {
  line: string
  run: () => Promise<unknown>
}

export class Tx {
  readonly dryRun: boolean
  /** the lines of the steps done (or, in dry-run, planned) so far */
  readonly lines: string[] = []
  private readonly undos: Undo[] = []
  private readonly log: ((line: string) => void) | undefined
  private readonly journal: Journal
  private runsPrograms = false
  /** locks held until the transaction ends, by name (see hold()) */
  private readonly held = new Map<string, () => void>()

  constructor(opts: TxOptions = {}) {
    this.dryRun = opts.dryRun ?? false
    this.log = opts.log
    this.journal = new Journal(opts.journal ?? { op: 'plumb', guests: [] })
  }

  /**
   * Write-ahead: record what the next step is about to create (or replace) in the op's journal
   * entry, durably, before it runs. Should plumb be killed before this transaction ends, the
   * next op on the guest or gc undoes it from the entry (./recover.ts). Nothing in a dry run.
   */
  intend(intent: Intent): void {
    if (!this.dryRun) this.journal.add(intent)
  }

  /** Complete `intent` (recorded by intend()) with what its step found out, in its place in the entry. */
  amend<I extends Intent>(intent: I, patch: Partial<I>): void {
    if (!this.dryRun) this.journal.amend(intent, patch)
  }

  /**
   * What a program a step runs is to carry (lib/proc.ts RunOptions.childOf), called as the step
   * runs: the entry records first (once) that the op runs programs, so that a recovery looks for
   * them (a scan of every process's environment, which an op that runs none is spared) and lets
   * them finish before undoing their work.
   */
  childOf(): string {
    if (!this.runsPrograms) {
      this.intend({ t: 'programs' })
      this.runsPrograms = true
    }
    return writerTag(selfIdentity())
  }

  /**
   * One step. `line` is its iproute2/ovs-vsctl/iptables equivalent (several lines for one
   * batch, e.g. an iptables-restore); `undo` (given the step's result) is pushed only once the
   * step succeeded. In dry-run the step is recorded, not run, and `undefined` is returned:
   * later steps must not need its result to be planned.
   */
  async step<T>(line: string | readonly string[], run: () => Promise<T>, undo?: { line: string; run: (result: T) => Promise<unknown> }): Promise<T> {
    const lines = typeof line === 'string' ? [line] : line
    this.lines.push(...lines)
    if (this.dryRun) return undefined as T
    const started = this.log ? performance.now() : 0
    const result = await run()
    if (this.log) this.log(`${lines.join('\n')}  (${(performance.now() - started).toFixed(1)} ms)`)
    if (undo) this.undos.push({ line: undo.line, run: () => undo.run(result) })
    return result
  }

  /**
   * Several independent steps at once: every `run` is called right away, in order, so their
   * netlink requests reach the kernel in that order without a round trip between them (the
   * kernel runs a socket's requests one after the other, so a later step still sees an earlier
   * one's effect). Then all are awaited; the undo of each that succeeded is pushed (in order),
   * and the first failure, in step order, is thrown. A `run` must send its request before its
   * first await. In dry-run the steps are recorded, not run.
   */
  async batch(steps: Array<BatchStep<unknown>>): Promise<void> {
    for (const s of steps) this.lines.push(s.line)
    if (this.dryRun || steps.length === 0) return
    const started = this.log ? performance.now() : 0
    const settled = await Promise.allSettled(steps.map((s) => s.run()))
    let failure: { reason: unknown } | undefined
    settled.forEach((r, i) => {
      const s = steps[i]!
      if (r.status === 'rejected') {
        failure ??= { reason: r.reason }
        return
      }
      if (this.log) this.log(`${s.line}  (${(performance.now() - started).toFixed(1)} ms, batched)`)
      if (s.undo) {
        const { undo } = s
        this.undos.push({ line: undo.line, run: () => undo.run(r.value) })
      }
    })
    if (failure) throw failure.reason
  }

  /** Whether this transaction holds the lock named `name` already (see hold()). */
  holds(name: string): boolean {
    return this.held.has(name)
  }

  /**
   * Keep a lock until the transaction ends: released after commit, or after the rollback's undos
   * (which may need it as much as the steps did). One per name: a helper asks holds() first.
   */
  hold(name: string, release: () => void): void {
    this.held.set(name, release)
  }

  private releaseHeld(): void {
    for (const release of this.held.values()) release()
    this.held.clear()
  }

  /** Register an inverse for something done outside step() (e.g. a resource acquired by a helper). */
  onRollback(line: string, run: () => Promise<unknown>): void {
    if (!this.dryRun) this.undos.push({ line, run })
  }

  /**
   * Undo the done steps in reverse; returns what was undone (and what could not be). The
   * journal entry goes only when every undo worked: otherwise gc gets to finish the job.
   */
  async rollback(): Promise<string[]> {
    const report: string[] = []
    let failed = false
    while (this.undos.length > 0) {
      const u = this.undos.pop()!
      try {
        await u.run()
        report.push(u.line)
        this.log?.(`rollback: ${u.line}`)
      } catch (err) {
        failed = true
        report.push(`${u.line}  (FAILED: ${asPlumbError(err).message})`)
      }
    }
    if (!failed) this.journal.close()
    this.releaseHeld()
    return report
  }

  /** Forget the inverses: the transaction's work stays. */
  commit(): void {
    this.undos.length = 0
    this.journal.close()
    this.releaseHeld()
  }
}

/**
 * Run `body` as a transaction. On failure everything done is rolled back and the original
 * error is re-thrown as a PlumbError (keeping its code) carrying what the rollback undid.
 */
export async function runTx<T>(opts: TxOptions, body: (tx: Tx) => Promise<T>): Promise<T> {
  const tx = new Tx(opts)
  try {
    const result = await body(tx)
    tx.commit()
    return result
  } catch (err) {
    const rolledBack = await tx.rollback()
    let perr = asPlumbError(err)
    if (rolledBack.length > 0) {
      // Exit 2 promises "nothing was touched" (CLI.md); a value the kernel refused half-way
      // (ENETUNREACH for a route's gateway, say) was found after steps ran: that is exit 1.
      if (perr.code === 'USAGE') {
        perr = new PlumbError('FAILED', perr.message, { cause: perr.cause ?? err, ...(perr.hint !== undefined ? { hint: perr.hint } : {}) })
      }
      perr.rolledBack = rolledBack
    }
    throw perr
  }
}

// Progress of a deploy or destroy (a line per node and link, or a bar on a TTY), and the pool
// that runs independent steps concurrently while keeping the first failure.

export interface LabProgress {
  /** steps finished so far (this one included) and all of them */
  done: number
  total: number
  /** `node web`, `link web:eth1 -- lan0:web-eth1`, ... */
  what: string
  /** what became of it: `created`, `removed`, `repaired`, or the error's message */
  outcome: string
  ok: boolean
  ms: number
}

export type ProgressFn = (p: LabProgress) => void

export class Progress {
  private done = 0
  constructor(
    readonly total: number,
    private readonly report: ProgressFn | undefined,
  ) {}

  /** Run `fn` as one step of the progress; its outcome is reported whatever happens. */
  async step<T>(what: string, outcome: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      const r = await fn()
      this.report?.({ done: ++this.done, total: this.total, what, outcome, ok: true, ms: performance.now() - started })
      return r
    } catch (err) {
      this.report?.({ done: ++this.done, total: this.total, what, outcome: err instanceof Error ? err.message : String(err), ok: false, ms: performance.now() - started })
      throw err
    }
  }
}

/**
 * Run `fn` on every item, at most `limit` at once. On the first failure no new item starts; the
 * ones under way finish (their undo must be registered before a rollback runs), then the first
 * error is thrown.
 */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  let failure: { err: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!
      try {
        await fn(item)
      } catch (err) {
        failure ??= { err }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (failure) throw failure.err
}

/** A progress renderer for a terminal: one line rewritten in place (`[=====>    ] 12/60 link ...`). */
export function barRenderer(write: (s: string) => void, width = 30): ProgressFn {
  return (p) => {
    const filled = Math.round((p.done / Math.max(p.total, 1)) * width)
    const bar = `${'='.repeat(Math.max(filled - 1, 0))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`
    const text = `\r[${bar}] ${p.done}/${p.total} ${p.ok ? '' : 'FAILED '}${p.what}`.slice(0, (process.stderr.columns || 100) - 1)
    write(`${text}\u001b[K${p.done === p.total || !p.ok ? '\n' : ''}`)
    if (!p.ok) write(`  ${p.outcome}\n`)
  }
}

/** A progress renderer for logs and pipes: one line per finished step. */
export function lineRenderer(write: (s: string) => void): ProgressFn {
  return (p) => write(`[${String(p.done).padStart(String(p.total).length)}/${p.total}] ${p.what}: ${p.ok ? p.outcome : `FAILED: ${p.outcome}`} (${p.ms.toFixed(0)} ms)\n`)
}

// watch: follow the engine's container events and replay a container's record each time it
// starts (a restart gives it a new netns, empty of plumb's work). On every (re)connection it first
// reconciles: each running container with a record is replayed (starts missed while watch was down
// or the engine was restarting), each record of a removed container is forgotten. Replays of
// different containers run at once; one container's failure is logged and stops nothing else.

import { asPlumbError } from '../errors.js'
import { ENGINE_TITLE } from '../guest/engine.js'
import { endpointUrl, engineEndpoint } from '../guest/endpoint.js'
import { containerFate } from '../guest/index.js'
import type { EngineName } from '../guest/index.js'
import { followEvents } from './events.js'
import type { ContainerEvent } from './events.js'
import { ReplayError, replay } from './replay.js'
import type { ReplayResult } from './replay.js'
import { RecordError } from './record.js'
import { forgetContainer, listStoredRecords, loadRecord, recordPath } from './store.js'

export interface WatchOptions {
  /** reconcile once (replay every running container with a record, forget removed ones) and return */
  once?: boolean
  /** the engines to follow (default docker) */
  engines?: EngineName[]
  /** one line per action (a replay, a record forgotten, the stream lost and back) */
  log?: (line: string) => void
  /** more: each event seen, each step of each replay */
  verbose?: (line: string) => void
  /** stop following (the watch then resolves) */
  signal?: AbortSignal
  /** how many containers are replayed at once (default 16) */
  concurrency?: number
  /** after each replay, done or failed (tests and benchmarks measure with it) */
  onReplay?: (r: WatchReplay) => void
}

/** One replay watch did. */
export interface WatchReplay {
  engine: EngineName
  id: string
  /** what set it off: a start event, or the reconciliation at (re)connection */
  trigger: 'start' | 'reconcile'
  /** the start event's own time (ns since the epoch), when a start set it off */
  eventTimeNano?: bigint
  /** Date.now() when the replay ended */
  endedAt: number
  ms: number
  result?: ReplayResult
  error?: ReturnType<ReturnType<typeof asPlumbError>['toJSON']>
}

export interface WatchSummary {
  replays: number
  failed: number
  forgotten: number
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const t = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true })
  })

const short = (id: string): string => id.slice(0, 12)

/** Follow the engines until `signal` aborts (or, with `once`, reconcile and return). */
export async function watch(opts: WatchOptions = {}): Promise<WatchSummary> {
  const w = new Watcher(opts)
  const engines = opts.engines ?? ['docker']
  if (opts.once) {
    await Promise.all(engines.map((e) => w.reconcile(e, true)))
    await w.idle()
    return w.summary
  }
  await Promise.all(engines.map((e) => w.follow(e)))
  await w.idle()
  return w.summary
}

class Watcher {
  readonly summary: WatchSummary = { replays: 0, failed: 0, forgotten: 0 }
  /** per container: the replay running now, and whether another was asked for meanwhile */
  private readonly running = new Map<string, Promise<void>>()
  private readonly again = new Map<string, { trigger: WatchReplay['trigger']; eventTimeNano?: bigint }>()
  private active = 0
  private readonly queue: Array<() => void> = []
  private readonly unreadable = new Set<string>()
  private gcRunning: Promise<void> | undefined
  private gcAgain = false

  constructor(private readonly opts: WatchOptions) {}

  private log(line: string): void {
    this.opts.log?.(`${new Date().toISOString()} ${line}`)
  }

  /** Follow one engine's events, reconnecting (with backoff) whenever the stream is lost. */
  async follow(engine: EngineName): Promise<void> {
    const ep = engineEndpoint(engine)
    const title = ENGINE_TITLE[engine]
    let backoff = 100
    let state: 'new' | 'up' | 'down' = 'new'
    while (!this.opts.signal?.aborted) {
      try {
        await followEvents(
          ep,
          {
            subscribed: () => {
              backoff = 100
              this.log(`${state === 'down' ? 'back: ' : ''}following ${title}'s container events at ${endpointUrl(ep)}`)
              state = 'up'
              // Subscribed first, then reconciled: a start from now on is an event, one before it
              // is found running here; both replay, and the second finds it made ("already").
              void this.reconcile(engine, false)
            },
            event: (e) => this.onEvent(engine, e),
          },
          this.opts.signal,
        )
      } catch (err) {
        if (this.opts.signal?.aborted) break
        // An engine that cannot be asked is "don't know", never "gone": nothing is forgotten
        // or undone while it is down; the stream is asked for again, at most every 5 s.
        if (state !== 'down') this.log(`lost ${title}'s event stream: ${asPlumbError(err).message}; reconnecting`)
        state = 'down'
      }
      await sleep(backoff, this.opts.signal)
      backoff = Math.min(backoff * 2, 5000)
    }
  }

  private onEvent(engine: EngineName, e: ContainerEvent): void {
    this.opts.verbose?.(`event: ${engine} ${e.action} ${e.name ?? ''} ${short(e.id)}`)
    if (e.action === 'start') {
      if (this.hasRecord(engine, e.id)) this.schedule(engine, e.id, 'start', e.timeNano)
    } else if (e.action === 'destroy') {
      void this.forget(engine, e.id, `${engine}:${e.name ?? short(e.id)}`, 'the container was removed')
    }
    // die: nothing to do until it starts again (its netns, and plumb's work in it, went with it)
  }

  /** Does this container have a record to replay? An unreadable one is reported once and skipped. */
  private hasRecord(engine: EngineName, id: string): boolean {
    try {
      return loadRecord(engine, id) !== undefined
    } catch (err) {
      this.reportUnreadable(recordPath(engine, id), err)
      return false
    }
  }

  private reportUnreadable(file: string, err: unknown): void {
    if (this.unreadable.has(file)) return
    this.unreadable.add(file)
    this.log(`skipped ${file}: ${err instanceof RecordError ? err.message : asPlumbError(err).message}`)
  }

  /** Every record of this engine: a running container is replayed, a removed one forgotten, a stopped one left for its next start. */
  async reconcile(engine: EngineName, strict: boolean): Promise<void> {
    let stored
    try {
      stored = listStoredRecords(engine)
    } catch (err) {
      this.log(`could not read the records: ${asPlumbError(err).message}`)
      if (strict) throw err
      return
    }
    await Promise.all(
      stored.map(async (s) => {
        if ('error' in s) return this.reportUnreadable(s.file, s.error)
        const f = await containerFate(engine, s.id)
        if (f.state === 'gone') return this.forget(engine, s.id, `${engine}:${s.record.name ?? short(s.id)}`, 'the container no longer exists')
        if (f.state === 'unknown') {
          if (strict) throw f.error
          return this.log(`left ${engine}:${s.record.name ?? short(s.id)} as it is: ${f.reason}`)
        }
        if (f.running) this.schedule(engine, s.id, 'reconcile')
      }),
    )
  }

  /** Forget a removed container's record, then let gc collect what it left on the host (once for a burst of removals). */
  private async forget(engine: EngineName, id: string, label: string, why: string): Promise<void> {
    try {
      if (!(await forgetContainer(engine, id))) return
      this.summary.forgotten++
      this.log(`forgot the record of ${label} (${short(id)}): ${why}`)
      this.collect()
    } catch (err) {
      this.log(`could not forget the record of ${short(id)}: ${asPlumbError(err).message}`)
    }
  }

  private collect(): void {
    if (this.gcRunning) {
      this.gcAgain = true
      return
    }
    this.gcRunning = (async () => {
      do {
        this.gcAgain = false
        try {
          const { gc } = await import('../ops/gc.js')
          const r = await gc()
          const did = r.messages.filter((m) => /^(removed|deleted|gave|cleaned|forgot)/.test(m))
          if (did.length) this.log(`gc: ${did.join('; ')}`)
        } catch (err) {
          this.log(`gc: ${asPlumbError(err).message}`)
        }
      } while (this.gcAgain && !this.opts.signal?.aborted)
      this.gcRunning = undefined
    })()
  }

  /** Replay a container now, or right after the replay of it that is running (once, however often asked). */
  private schedule(engine: EngineName, id: string, trigger: WatchReplay['trigger'], eventTimeNano?: bigint): void {
    const key = `${engine}:${id}`
    if (this.running.has(key)) {
      this.again.set(key, { trigger, ...(eventTimeNano !== undefined ? { eventTimeNano } : {}) })
      return
    }
    const run = (async () => {
      let next: { trigger: WatchReplay['trigger']; eventTimeNano?: bigint } | undefined = { trigger, ...(eventTimeNano !== undefined ? { eventTimeNano } : {}) }
      while (next) {
        await this.slot()
        try {
          await this.replayOne(engine, id, next.trigger, next.eventTimeNano)
        } finally {
          this.release()
        }
        next = this.again.get(key)
        this.again.delete(key)
      }
    })()
    this.running.set(key, run)
    void run.finally(() => this.running.delete(key))
  }

  private async slot(): Promise<void> {
    if (this.active < (this.opts.concurrency ?? 16)) {
      this.active++
      return
    }
    await new Promise<void>((resolve) => this.queue.push(resolve))
  }

  private release(): void {
    const next = this.queue.shift()
    if (next) next()
    else this.active--
  }

  private async replayOne(engine: EngineName, id: string, trigger: WatchReplay['trigger'], eventTimeNano?: bigint): Promise<void> {
    const started = performance.now()
    const out: Omit<WatchReplay, 'endedAt' | 'ms'> = { engine, id, trigger, ...(eventTimeNano !== undefined ? { eventTimeNano } : {}) }
    let line: string
    try {
      const r = await replay({ guest: { kind: 'container', engine, name: id }, ...(this.opts.verbose ? { log: this.opts.verbose } : {}) })
      out.result = r
      const made = r.entries.filter((e) => e.outcome === 'made')
      const waiting = r.entries.filter((e) => e.outcome === 'waiting')
      line = made.length
        ? `replayed ${r.guest} (${short(id)}) ${trigger === 'start' ? 'after its start' : 'found running'}: made ${made.map((e) => `${e.ifname ? `${e.ifname} ` : ''}${e.op}`).join(', ')}`
        : `${r.guest} (${short(id)}) ${trigger === 'start' ? 'started' : 'is running'} with its record in place (${r.entries.length} ${r.entries.length === 1 ? 'entry' : 'entries'})`
      if (waiting.length) line += `; ${waiting.map((e) => `${e.ifname} waits for its peer`).join(', ')}`
      if (r.cleared.length) line += `; removed ${r.cleared.length} leftover(s) of its previous netns first`
    } catch (err) {
      const perr = asPlumbError(err)
      out.error = perr.toJSON()
      if (err instanceof ReplayError) out.result = err.result
      this.summary.failed++
      line = `replay of ${out.result?.guest ?? `${engine}:${short(id)}`} (${short(id)}) failed: ${perr.message}`
    }
    this.summary.replays++
    const ms = performance.now() - started
    this.log(`${line} (${ms.toFixed(0)} ms)`)
    this.opts.onReplay?.({ ...out, endedAt: Date.now(), ms })
  }

  /** Resolves when no replay and no gc runs. */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.running.values(), ...(this.gcRunning ? [this.gcRunning] : [])]
      if (busy.length === 0) return
      await Promise.allSettled(busy)
    }
  }
}

// The Engine API's event stream (`GET /events`): a chunked body that never ends, one JSON object
// per line, read by the same HTTP/1.1 reader as every other answer (lib/guest/engine.ts).

import { PlumbError } from '../errors.js'
import { API, ENGINE_TITLE, apiFailure, apiRequest } from '../guest/engine.js'
import { endpointUrl } from '../guest/endpoint.js'
import type { EngineEndpoint } from '../guest/endpoint.js'

/** A container's lifecycle event, as watch uses it. */
export interface ContainerEvent {
  action: 'start' | 'die' | 'destroy'
  /** the full container id */
  id: string
  name?: string
  /** when the engine says it happened, in ns since the epoch */
  timeNano?: bigint
}

/** The actions watch follows: a start is a new netns to plumb; a destroy is a record to forget. */
export const WATCHED_ACTIONS = ['start', 'die', 'destroy'] as const

/** The request path: containers' start, die and destroy only (the engine filters; a busy host sends nothing else). */
export function eventsPath(): string {
  const filters = JSON.stringify({ type: ['container'], event: WATCHED_ACTIONS })
  return `${API}/events?filters=${encodeURIComponent(filters)}`
}

/**
 * One event line to a ContainerEvent; undefined for a line that is not one (another type or
 * action, or not JSON: an engine may add to its stream, and an odd line must not end the watch).
 * Docker 20.10 and Podman's compat API write `Type`, `Action` and `Actor.ID` (and the older
 * `status`/`id`, which Podman alone may lack).
 */
export function parseEventLine(line: string): ContainerEvent | undefined {
  let e: Record<string, unknown>
  try {
    e = JSON.parse(line) as Record<string, unknown>
  } catch {
    return undefined
  }
  if (typeof e !== 'object' || e === null) return undefined
  const type = e.Type ?? e.type
  if (type !== undefined && type !== 'container') return undefined
  const actor = (e.Actor ?? {}) as { ID?: unknown; Attributes?: Record<string, unknown> }
  const action = String(e.Action ?? e.status ?? '')
  const id = String(actor.ID ?? e.id ?? '')
  if (!(WATCHED_ACTIONS as readonly string[]).includes(action) || !/^[0-9a-f]{12,64}$/.test(id)) return undefined
  const name = actor.Attributes?.name
  const timeNano = typeof e.timeNano === 'number' ? BigInt(Math.round(e.timeNano)) : typeof e.time === 'number' ? BigInt(e.time) * 1_000_000_000n : undefined
  return { action: action as ContainerEvent['action'], id, ...(typeof name === 'string' ? { name } : {}), ...(timeNano !== undefined ? { timeNano } : {}) }
}

/** Splits a byte stream into lines (an event may arrive in pieces, or several in one piece). */
export class LineSplitter {
  private rest = ''
  constructor(private readonly onLine: (line: string) => void) {}
  push(chunk: Buffer): void {
    const text = this.rest + chunk.toString('utf8')
    const lines = text.split('\n')
    this.rest = lines.pop() ?? ''
    for (const l of lines) if (l.trim()) this.onLine(l)
  }
}

/**
 * Follow an engine's container events until the stream ends (the engine closed it: it stopped or
 * restarted, which rejects), or `signal` aborts (resolves). `onSubscribed` runs once the engine
 * has answered 200: events from then on are not missed, so that is when to look at what
 * happened while nobody was listening.
 */
export async function followEvents(
  ep: EngineEndpoint,
  on: { event: (e: ContainerEvent) => void; subscribed?: () => void },
  signal?: AbortSignal,
): Promise<void> {
  const lines = new LineSplitter((line) => {
    const e = parseEventLine(line)
    if (e) on.event(e)
  })
  const ans = await apiRequest(ep, 'GET', eventsPath(), undefined, 5000, {
    stream: {
      onHead: (status) => {
        if (status === 200) on.subscribed?.()
      },
      onData: (chunk) => lines.push(chunk),
      ...(signal ? { signal } : {}),
    },
  })
  if (signal?.aborted) return
  if (ans.status !== 200) throw apiFailure(ep, 'follow the container events', ans)
  throw new PlumbError('FAILED', `${ENGINE_TITLE[ep.engine]} closed its event stream at ${endpointUrl(ep)}`)
}

// Is a guest still there? For gc and ls: found, gone, or unknown. An engine that cannot be
// asked (down, hung, not allowed) means "don't know", never "gone".

import { PlumbError, asPlumbError } from '../errors.js'
import { EngineUnreachable, lookupContainer } from './engine.js'
import { resolveGuest } from './resolve.js'
import type { EngineName, GuestRef, Netns, ResolveOptions } from './types.js'

export type GuestState =
  | { state: 'found'; netns: Netns }
  /** the guest can no longer be named: no such container, not running, no such netns, pid or file */
  | { state: 'gone'; reason: string }
  /** plumb could not find out (the engine is down or hung, a permission, ...): `error` says why */
  | { state: 'unknown'; reason: string; error: PlumbError }

export type GuestVerdict = Exclude<GuestState, { state: 'found' }>

/** The EngineUnreachable behind an error: the engine, not one container, failed to answer. */
function engineCause(err: unknown): EngineUnreachable | undefined {
  if (err instanceof EngineUnreachable) return err
  const cause = (err as { cause?: unknown } | undefined)?.cause
  return cause instanceof EngineUnreachable ? cause : undefined
}

/**
 * What a failed resolveGuest says about the guest. Only NOT_FOUND from a source that answered
 * (the engine said 404 or "not running", the kernel said ENOENT/ESRCH) is "gone"; every other
 * failure is "unknown", with an error whose code names the cause: an engine that is not running
 * or does not answer is UNSUPPORTED (exit 5), as an Open vSwitch that cannot be asked is.
 */
export function guestVerdict(err: unknown): GuestVerdict {
  const down = engineCause(err)
  if (err instanceof PlumbError && err.code === 'NOT_FOUND' && !down) return { state: 'gone', reason: err.message }
  if (down) {
    // a timeout's own words ("did not answer within 5 s") say more than "ETIMEDOUT"
    const reason = down.errno === 'ETIMEDOUT' && err instanceof Error && err !== down ? err.message : down.message
    const error = new PlumbError('UNSUPPORTED', reason, { ...(err instanceof PlumbError && err.hint ? { hint: err.hint } : {}), cause: err })
    return { state: 'unknown', reason, error }
  }
  const error = asPlumbError(err)
  return { state: 'unknown', reason: error.message, error }
}

export interface GuestProbe {
  /** Resolve `ref` (host netns allowed): a found guest's netns is open, the caller closes it. */
  (ref: GuestRef): Promise<GuestState>
  /** An engine found unreachable elsewhere (a container listing): its guests are unknown without asking again. */
  engineDown(engine: EngineName, err: unknown): void
}

const engineOf = (ref: GuestRef): EngineName | undefined => (ref.kind !== 'container' ? undefined : ref.engine === 'podman' ? 'podman' : 'docker')

/**
 * A prober for one gc or ls run. Once an engine did not answer, the rest of its guests are
 * unknown for the same reason at once: a hung engine costs its timeout once, not per guest.
 */
export function guestProbe(opts: Omit<ResolveOptions, 'allowHost'> = {}): GuestProbe {
  const down = new Map<EngineName, GuestVerdict>()
  const probe = async (ref: GuestRef): Promise<GuestState> => {
    const engine = engineOf(ref)
    const known = engine && down.get(engine)
    if (known) return known
    try {
      return { state: 'found', netns: await resolveGuest(ref, { ...opts, allowHost: true }) }
    } catch (err) {
      const v = guestVerdict(err)
      if (engine && v.state === 'unknown' && engineCause(err)) down.set(engine, v)
      return v
    }
  }
  return Object.assign(probe, {
    engineDown(engine: EngineName, err: unknown): void {
      const v = guestVerdict(err)
      down.set(engine, v.state === 'unknown' ? v : { state: 'unknown', reason: v.reason, error: asPlumbError(err) })
    },
  })
}

export type ContainerFate =
  | { state: 'exists'; running: boolean; name: string; pid: number }
  /** the engine answered: no such container (removed) */
  | { state: 'gone'; reason: string }
  | { state: 'unknown'; reason: string; error: PlumbError }

/**
 * Does the engine still have this container, running or not? What a replay record lives by: a
 * stopped container keeps its record (it may start again), a removed one does not, and an
 * engine that cannot be asked says nothing either way.
 */
export async function containerFate(engine: EngineName, id: string, env: NodeJS.ProcessEnv = process.env): Promise<ContainerFate> {
  try {
    const { info } = await lookupContainer(id, engine, env)
    if (!info) return { state: 'gone', reason: `${engine} has no container ${id.slice(0, 12)}` }
    return { state: 'exists', running: info.running, name: info.name, pid: info.pid }
  } catch (err) {
    const v = guestVerdict(err)
    // NOT_FOUND that is not "the engine said 404" (lookupContainer answers undefined for that) is
    // the engine not answering: unknown, whatever guestVerdict made of it.
    return v.state === 'unknown' ? v : { state: 'unknown', reason: v.reason, error: asPlumbError(err) }
  }
}

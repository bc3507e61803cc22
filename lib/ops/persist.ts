// The one way an op records what it did to a container (lib/watch/record.ts), so that `replay`
// and `watch` can do it again when the container restarts: the op's last step, inside its
// transaction, under the store's lock. Only Docker/Podman containers are recorded (the key is
// their id, which a restart keeps); an ip netns or a pid has nothing to come back as.

import { existsSync } from 'node:fs'
import { PlumbError, asPlumbError } from '../errors.js'
import type { Netns } from '../guest/index.js'
import { ipSpecText, routeSpecText } from '../parse/index.js'
import type { IpSpec, RouteSpec } from '../parse/index.js'
import { RecordError, containerRef, newContainerRecord, p2pPeer, parseContainerRef, parseRecord, putLink, removeInterface, removeP2p } from '../watch/record.js'
import type { ContainerRecord, RecordEntry, RecordedOp } from '../watch/record.js'
import { loadRecord, recordPath, saveRecord, withStoreLock } from '../watch/store.js'
import type { CommonOptions } from './context.js'
import type { OpResult } from './result.js'
import type { Tx } from './tx.js'

/** A change to a record, in place. It may be run on an empty record first (to tell an edit that records nothing). */
export type RecordEdit = (r: ContainerRecord) => void

/** A container whose record is edited, as the op knows it. */
export interface RecordedContainer {
  engine: 'docker' | 'podman'
  id: string
  name?: string
}

/** What gets recorded: an edit of the record of the container behind `netns` (or of a container known by its id: a p2p link's other side). */
export type RecordChange = { netns: Netns; edit: RecordEdit } | { container: RecordedContainer; label: string; edit: RecordEdit }

/** A container whose netns is its own (or another container's it joined), not the host's: what a record is kept for. */
export function recordedContainer(netns: Netns): { engine: 'docker' | 'podman'; id: string; name: string } | undefined {
  const c = netns.container
  return c && !netns.isHost ? { engine: c.engine, id: c.id, name: c.name } : undefined
}

/** Drop the keys whose value is undefined (and empty lists): a record keeps what was given. */
export function recordArgs(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)))
}

/** IP and route specs as a record keeps them: the canonical text the parsers read back. */
export const ipTexts = (ips: IpSpec[]): string[] => ips.map(ipSpecText)
export const routeTexts = (routes: RouteSpec[]): string[] => routes.map(routeSpecText)

/** The run options a record keeps (the lab an op worked for goes back into its marks on replay). */
export const commonArgs = (opts: CommonOptions): Record<string, unknown> => recordArgs({ lab: opts.lab })

/** An entry for `op` with these args (undefined ones dropped), stamped now. */
export function entry(op: RecordedOp, args: Record<string, unknown>): RecordEntry {
  return { op, args: recordArgs(args), at: new Date().toISOString() }
}

/** The edit of a link op: its entry takes the interface's slot. */
export const linkEdit = (op: RecordedOp, args: Record<string, unknown>): RecordEdit => (r) => putLink(r, entry(op, args))

/**
 * Apply each change to its container's record, durably, as the transaction's step (undone, if a
 * later step fails, by putting the file back as it was unless another plumb wrote it since).
 * Nothing in a dry run, with `persist: false` (--no-persist, and replay itself), or for a guest
 * that is not a container. A record that cannot be read (corrupt, or a newer plumb's) is left
 * alone and the op says it was not recorded: a record is never fatal to the work it describes.
 * Resolves to whether a record was written.
 */
export async function persist(tx: Tx, opts: CommonOptions, result: OpResult, changes: RecordChange[]): Promise<boolean> {
  if (tx.dryRun || opts.persist === false) return false
  let wrote = false
  for (const change of changes) {
    const c = 'netns' in change ? recordedContainer(change.netns) : change.container
    if (!c) continue
    const label = 'netns' in change ? change.netns.label : change.label
    const { edit } = change
    // An edit that records nothing on an empty record (a detach, a --del) of a container with no
    // record: nothing to write, so no store to create and no lock to take.
    const probe = newContainerRecord(c.engine, c.id)
    edit(probe)
    if (probe.entries.length === 0 && !existsSync(recordPath(c.engine, c.id))) continue
    // timed only when logged: the first read of `performance` loads node:perf_hooks (~1 ms)
    const started = opts.log ? performance.now() : 0
    const done = await withStoreLock(() => {
      let before: ContainerRecord | undefined
      try {
        before = loadRecord(c.engine, c.id)
      } catch (err) {
        if (err instanceof RecordError) return { skipped: err.message }
        throw err
      }
      const next = before ? (JSON.parse(JSON.stringify(before)) as ContainerRecord) : newContainerRecord(c.engine, c.id, c.name)
      if (c.name) next.name = c.name
      edit(next)
      if (before === undefined ? next.entries.length === 0 : JSON.stringify(next.entries) === JSON.stringify(before.entries)) return { unchanged: true }
      try {
        saveRecord(next)
      } catch (err) {
        throw new PlumbError('FAILED', `failed to record what was done to ${label} in ${recordPath(c.engine, c.id)}: ${asPlumbError(err).message}`, {
          hint: 'pass --no-persist to leave it unrecorded (it is then not replayed after a restart)',
          cause: err,
        })
      }
      // as a reader will see it, so the undo can tell whether another plumb wrote since
      return { before, written: JSON.stringify(parseRecord(JSON.stringify(next), recordPath(c.engine, c.id))) }
    })
    if ('skipped' in done) {
      ;(result.warnings ??= []).push(`not recorded for replay: ${done.skipped}`)
      continue
    }
    if (!('written' in done)) continue
    wrote = true
    opts.log?.(`# record ${label} in ${recordPath(c.engine, c.id)}  (${(performance.now() - started).toFixed(1)} ms)`)
    tx.onRollback(`# put back the record of ${label}`, () =>
      withStoreLock(() => {
        let now: ContainerRecord | undefined
        try {
          now = loadRecord(c.engine, c.id)
        } catch {
          return // unreadable since: not ours to touch
        }
        if (JSON.stringify(now) !== done.written) return // another plumb recorded since: its entry stays
        if (done.before) saveRecord(done.before)
        else saveRecord({ ...newContainerRecord(c.engine, c.id), entries: [] })
      }),
    )
  }
  return wrote
}

/**
 * detach: what it undid leaves the record (`what`: the interfaces, or 'all' for detach --all,
 * which also undoes sysctls and name edits); a p2p link leaves its other side's record too.
 */
export async function forgetInRecord(tx: Tx, opts: CommonOptions, result: OpResult, netns: Netns, what: string[] | 'all'): Promise<boolean> {
  const c = recordedContainer(netns)
  if (!c) return false
  const self = containerRef(c.engine, c.id)
  const links: RecordEntry[] = []
  const forgot = await persist(tx, opts, result, [
    {
      netns,
      edit: (r) => {
        if (what !== 'all') {
          for (const ifname of what) links.push(...removeInterface(r, ifname))
          return
        }
        links.push(...r.entries.filter((e) => e.op === 'p2p-link'))
        r.entries = [] // the published ports too: detach --all unpublishes them
      },
    },
  ])
  await persist(
    tx,
    opts,
    result,
    links.flatMap((link) => {
      const peer = p2pPeer(link, self)
      const container = peer && parseContainerRef(peer.ref)
      return container ? [{ container, label: peer.ref, edit: (r: ContainerRecord) => removeP2p(r, link) }] : []
    }),
  )
  return forgot
}

// Linux and OVS bridges plumb plugs into: found or created (and marked plumb's), brought up, and
// removed again when the op that created one fails, or its last plumb port goes, and it is empty.

import { PlumbError } from '../errors.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { formatMark, parseMark } from '../parse/index.js'
import type { RuleMark } from '../parse/index.js'
import { ignoreGone } from './guest-config.js'
import { BRIDGE_LOCK, tryBridgeLock } from './bridge-lock.js'
import type { BridgeLock } from './bridge-lock.js'
import type { OpResult } from './result.js'
import type { Tx } from './tx.js'

/** The owner mark of a Linux bridge plumb created. */
export const bridgeMark = (name: string): string => formatMark({ v: 1, role: 'bridge', op: 'attach-veth', bridge: name })

/**
 * A bridge an op created for its port (marked plumb's): detach and gc delete it once it is empty.
 * A lab's bridge (its mark names the lab) is the lab's: only `plumb lab destroy` removes it.
 */
export function isDisposableBridge(alias: string | undefined): boolean {
  const m = parseMark(alias)
  return m?.role === 'bridge' && m.extra?.lab === undefined
}

/**
 * The bridge exists (bring it up if down) or is created, up, and marked plumb's. With `made`,
 * a bridge this call creates is recorded there and its removal is left to the caller (see
 * dropMadeBridge); without it, its rollback deletes it unless other ports joined it meanwhile.
 */
export async function ensureLinuxBridge(
  tx: Tx,
  hostNs: NetHandle,
  name: string,
  bridge: LinkInfo | undefined,
  result: { messages: string[] },
  made?: { index?: number },
  /** a lab's bridge: marked with the lab's name, so only `plumb lab destroy` removes it */
  lab?: string,
): Promise<number> {
  if (bridge) {
    if (!bridge.up) {
      await tx.step(`ip link set ${name} up`, () => hostNs.setLink(bridge.index, { up: true }), {
        line: `ip link set ${name} down`,
        run: () => hostNs.setLink(bridge.index, { up: false }),
      })
      result.messages.push(`bridge ${name} was down: brought it up`)
    }
    return bridge.index
  }
  const mark = lab === undefined ? bridgeMark(name) : formatMark({ v: 1, role: 'bridge', op: 'lab', bridge: name, extra: { lab } })
  tx.intend({ t: 'bridge', name })
  const created = await tx.step(
    `ip link add ${name} up type bridge`,
    async () => {
      try {
        return await hostNs.createBridge({ name, up: true, alias: mark })
      } catch (err) {
        // Another plumb created it a moment ago: accept it only if it really is a bridge (CNI's ensureBridge).
        const again = await hostNs.getLink(name)
        if (again?.kind === 'bridge') return { index: again.index, raced: true }
        throw err
      }
    },
    {
      line: `ip link del ${name}`,
      run: async (r) => {
        if ('raced' in r || made) return
        if ((await hostNs.getLinks()).some((l) => l.master === r.index)) return
        await hostNs.delLink(r.index)
      },
    },
  )
  if (made && created && !('raced' in created)) made.index = created.index
  result.messages.push(`created bridge ${name}`)
  return created?.index ?? 0
}

/** The rollback of a bridge the failed op created: delete it if it has no port; say so in the error. */
export async function dropMadeBridge(hostNs: NetHandle, name: string, made: { index?: number }, err: unknown): Promise<unknown> {
  if (made.index === undefined || !(err instanceof PlumbError)) return err
  let links: LinkInfo[]
  try {
    links = await hostNs.getLinks()
  } catch (e) {
    // Not knowing whether other ports joined it, the bridge stays: and the error says so.
    err.rolledBack = [...(err.rolledBack ?? []), `ip link del ${name}  (NOT DONE: could not read the host's links: ${e instanceof Error ? e.message : String(e)})`]
    return err
  }
  if (links.some((l) => l.index === made.index && l.name === name) && !links.some((l) => l.master === made.index)) {
    try {
      await hostNs.delLink(made.index)
      err.rolledBack = [...(err.rolledBack ?? []), `ip link del ${name}`]
    } catch (e) {
      err.rolledBack = [...(err.rolledBack ?? []), `ip link del ${name}  (FAILED: ${e instanceof Error ? e.message : String(e)})`]
    }
  }
  return err
}

/**
 * Bridges left with no plumb port lose plumb's firewall rules (all of them, isolation and
 * masquerade too, when plumb deletes the bridge); a plumb-made one left empty is deleted. Both
 * under the bridge lock, exclusive, as gc: an attach-veth holds it (shared) from finding the
 * bridge until its port exists, so the ports are read again once it is ours, and an attach that
 * is about to plug in keeps its bridge and rule. `alsoRules`: more of plumb's rules to remove in
 * the same batch (a detached guest's published ports); `removing`: host ends the caller removes
 * (in a dry run they are still there).
 */
export async function cleanupBridges(
  tx: Tx,
  hostNs: NetHandle,
  bridges: readonly string[],
  result: OpResult,
  opts: { removing?: ReadonlySet<string>; alsoRules?: (m: RuleMark) => boolean } = {},
): Promise<void> {
  const removing = opts.removing ?? new Set<string>()
  let emptied = await bridgesLeft(tx, hostNs, bridges, removing)
  let lock: BridgeLock | undefined
  if (emptied.length) {
    // Attaches hold it shared for milliseconds; overlapping ones can keep an exclusive taker out
    // for longer. The port is gone already: the bridge (and its rules) may wait for gc, said so,
    // rather than fail a detach that did its job.
    lock = await tryBridgeLock('exclusive', { dryRun: tx.dryRun })
    if (!lock) {
      result.messages.push(`left bridge ${emptied.map((e) => e.bridge).join(', ')} and its firewall rules for now: the bridge lock (${BRIDGE_LOCK}) stayed taken; plumb gc removes them once the bridge is empty`)
      emptied = []
    } else emptied = await bridgesLeft(tx, hostNs, bridges, removing)
  }
  try {
    if (emptied.length === 0 && !opts.alsoRules) return
    const { bridgeRules, removeRules, sayRemoved } = await import('./firewall.js')
    const pick = (m: RuleMark): boolean => (opts.alsoRules?.(m) ?? false) || emptied.some((e) => bridgeRules(e.bridge, e.deleted)(m))
    sayRemoved((await removeRules(tx, hostNs, pick)).removed, result)
    for (const e of emptied) if (e.deleted) await deleteBridge(tx, hostNs, e, result)
  } finally {
    lock?.release()
  }
}

interface EmptiedBridge {
  bridge: string
  /** plumb made it for a port and it has none left: it is deleted (its rules all go with it) */
  deleted: boolean
  index?: number
}

/** The bridges left without a plumb port (their firewall rules go), and whether plumb deletes them. */
async function bridgesLeft(tx: Tx, hostNs: NetHandle, bridges: readonly string[], removing: ReadonlySet<string>): Promise<EmptiedBridge[]> {
  const out: EmptiedBridge[] = []
  if (bridges.length === 0) return out
  const links = await hostNs.getLinks()
  for (const bridge of bridges) {
    const br = links.find((l) => l.name === bridge)
    const ports = br ? links.filter((l) => l.master === br.index && !(tx.dryRun && removing.has(l.name))) : []
    if (ports.some((p) => parseMark(p.alias)?.role === 'host')) continue
    const deleted = br !== undefined && ports.length === 0 && isDisposableBridge(br.alias)
    out.push({ bridge, deleted, ...(br ? { index: br.index } : {}) })
  }
  return out
}

async function deleteBridge(tx: Tx, hostNs: NetHandle, e: EmptiedBridge, result: OpResult): Promise<void> {
  await tx.step(`ip link del ${e.bridge}`, () => ignoreGone(hostNs.delLink(e.index!)))
  result.messages.push(`deleted bridge ${e.bridge} (plumb made it and it is now empty)`)
}

/** An OVS bridge plumb created (--create-bridge) goes with its last port, like a Linux one. */
export async function cleanupOvsBridge(tx: Tx, bridge: string, result: OpResult): Promise<void> {
  const ovs = await import('../ovs/index.js')
  await tx.step(`# ovs-vsctl del-br ${bridge} if plumb made it and it has no port left`, async () => {
    if (await ovs.deleteBridgeIfEmptyAndOurs(bridge)) result.messages.push(`deleted OVS bridge ${bridge} (plumb made it and it is now empty)`)
  })
}

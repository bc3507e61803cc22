// One CNI attachment's links, found by the tags its ADD put into their owner marks (`cni=` the
// container id, `cniif=` CNI_IFNAME) and, for OVS ports, external_ids: taken apart for DEL and
// GC (in the guest's netns while it exists, then whatever is left on the host), checked for CHECK.

import { PlumbError } from '../errors.js'
import { openHostHandle } from '../kernel/index.js'
import type { LinkInfo } from '../kernel/types.js'
import { parseMark } from '../parse/index.js'
import type { OwnerMark } from '../parse/index.js'
import { netnsAt } from '../guest/nsfile.js'
import { withGuest } from '../ops/context.js'
import { sameNs } from '../ops/journal.js'
import { ignoreGone } from '../ops/guest-config.js'
import { emptyResult } from '../ops/result.js'
import type { OpResult } from '../ops/result.js'
import { runTx } from '../ops/tx.js'
import { cleanupBridges, cleanupOvsBridge } from '../ops/bridge.js'
import { returnMovedDevice, teardownLink } from '../ops/teardown.js'
import { CniError, PLUMB_CODE_BASE } from './errors.js'
import type { OpConfig } from './config.js'
import { recordNs } from './records.js'
import type { NetnsIdentity } from './records.js'
import type { CniResult } from './result.js'

export interface AttachmentId {
  containerId: string
  /** CNI_IFNAME (the guest interface may be named otherwise: the config's `ifname`) */
  ifname: string
}

/** The owner-mark tags of an attachment. */
export const attachmentTags = (a: AttachmentId): Record<string, string> => ({ cni: a.containerId, cniif: a.ifname })

function markOf(alias: string | undefined, a: AttachmentId): OwnerMark | undefined {
  const m = parseMark(alias)
  return m && m.extra?.cni === a.containerId && m.extra?.cniif === a.ifname ? m : undefined
}

/**
 * The netns file still names the netns the attachment was made in: the same inode, and the same
 * cookie when the record has one (the kernel gives a freed inode to the next netns it makes).
 */
export function sameNetns(path: string | undefined, id: NetnsIdentity): path is string {
  if (!path) return false
  const now = netnsAt(path)
  return now !== undefined && sameNs(now, recordNs(id))
}

/** Ops that may have made an OVS port (vlan and attach-veth hand an OVS bridge to ovs-port). */
const mayUseOvs = (op: OpConfig): boolean => op.op === 'ovs-port' || op.op === 'vlan' || op.op === 'attach-veth'

/**
 * Remove everything of the attachment; idempotent (nothing found is fine). `netns` is tried
 * first (links in the guest, with what hangs off them); then the host: veth host ends whose
 * guest is gone with its netns, devices move-dev gave a guest that died, OVS port rows, and
 * the bridge's firewall rule and plumb-made bridge once their last plumb port is gone.
 */
export async function removeAttachment(a: AttachmentId, opts: { netns?: string; op: OpConfig; made: boolean; log?: (line: string) => void }): Promise<OpResult> {
  const result = emptyResult('cni-del', opts.netns ?? 'host', false)
  const bridges = new Set<string>()
  const ovsBridges = new Set<string>()
  const noteBridge = (m: OwnerMark): void => {
    if (m.bridge) (m.op === 'ovs-port' ? ovsBridges : bridges).add(m.bridge)
  }
  if (opts.netns) {
    try {
      await withGuest({ kind: 'path', path: opts.netns }, { ...(opts.log ? { log: opts.log } : {}) }, async (ctx) => {
        const mine = (await ctx.guestNs.getLinks()).flatMap((l) => {
          const m = markOf(l.alias, a)
          return m && (m.role === 'guest' || m.role === 'moved') ? [{ l, m }] : []
        })
        if (mine.length === 0) return
        await runTx({ ...(opts.log ? { log: opts.log } : {}) }, async (tx) => {
          for (const { l, m } of mine) {
            await teardownLink(tx, ctx, l, m, result)
            noteBridge(m)
          }
        })
      })
    } catch (err) {
      // A netns that is gone took its links with it: what is left is on the host, below.
      if (!(err instanceof PlumbError && err.code === 'NOT_FOUND')) throw err
    }
  }
  const hostNs = openHostHandle()
  try {
    const links = await hostNs.getLinks()
    const hostEnds: Array<{ l: LinkInfo; m: OwnerMark }> = []
    const moved: Array<{ l: LinkInfo; m: OwnerMark }> = []
    for (const l of links) {
      const m = markOf(l.alias, a)
      if (m?.role === 'host') hostEnds.push({ l, m })
      if (m?.role === 'moved') moved.push({ l, m })
    }
    let ovs: typeof import('../ovs/index.js') | undefined
    let ports: Array<{ name: string; bridge: string }> = []
    const op = opts.op
    // attach-veth on a Linux bridge never touched OVS: no OVSDB round trip for it.
    const linuxBridge = op.op === 'attach-veth' && links.some((l) => l.name === op.bridge && l.kind === 'bridge')
    if (mayUseOvs(op) && !linuxBridge) {
      ovs = await import('../ovs/index.js')
      // Not there, nothing of it to remove; ovs-port itself needs it (a DEL must not pass silently).
      if (op.op === 'ovs-port' || (await ovs.ovsAvailable()).ok) {
        ports = (await ovs.listPlumbPorts()).filter((p) => p.externalIds['plumb-cni'] === a.containerId && p.externalIds['plumb-cniif'] === a.ifname)
      }
    }
    return await runTx({ ...(opts.log ? { log: opts.log } : {}) }, async (tx) => {
      for (const { l, m } of hostEnds) {
        await tx.step(`ip link del ${l.name}`, () => ignoreGone(hostNs.delLink(l.index)))
        noteBridge(m)
      }
      for (const { l, m } of moved) await returnMovedDevice(tx, hostNs, l, m, links, result)
      for (const p of ports) {
        await tx.step(`ovs-vsctl --if-exists del-port ${p.name}`, () => ovs!.delPort(p.name))
        ovsBridges.add(p.bridge)
      }
      // With its netns gone the host end went too, unseen: the config names the bridge.
      if (opts.made && op.op === 'ovs-port') ovsBridges.add(op.bridge)
      if (opts.made && op.op === 'attach-veth' && !ovsBridges.has(op.bridge)) bridges.add(op.bridge)
      // A bridge left without a plumb port loses its rule, and itself if plumb made it:
      // cleanupBridges does that under the bridge lock, and leaves it to plumb gc rather than
      // fail the DEL (which must release its address) when another plumb holds the lock too long.
      await cleanupBridges(tx, hostNs, [...bridges], result)
      for (const b of ovsBridges) await cleanupOvsBridge(tx, b, result)
      result.plan = tx.lines
      result.changed = tx.lines.length > 0
      return result
    })
  } finally {
    hostNs.close()
  }
}

/**
 * CHECK: the attachment's guest interface is there and up, with the MAC and the addresses
 * prevResult lists for it; a veth's host end is there on its bridge; Docker's FORWARD DROP
 * still has plumb's ACCEPT rule for that bridge. Routes are not checked: a later plugin in the
 * chain may change them (the spec says so).
 */
export async function checkAttachment(a: AttachmentId, opts: { netns: string; op: OpConfig; prev: CniResult }): Promise<void> {
  const fail = (msg: string, details = ''): CniError => new CniError(PLUMB_CODE_BASE + 1, `CHECK: ${msg}`, details)
  await withGuest({ kind: 'path', path: opts.netns }, {}, async (ctx) => {
    const links = await ctx.guestNs.getLinks()
    const link = links.find((l) => markOf(l.alias, a)?.role === 'guest' || markOf(l.alias, a)?.role === 'moved')
    if (!link) throw fail(`no interface of container ${a.containerId} (${a.ifname}) in ${opts.netns}`, 'it was removed behind plumb\'s back: DEL and ADD again')
    const mark = markOf(link.alias, a)!
    if (!link.up) throw fail(`${link.name} in ${opts.netns} is down`)
    const at = opts.prev.interfaces.findIndex((i) => i.name === link.name && i.sandbox === opts.netns)
    if (at >= 0) {
      const want = opts.prev.interfaces[at]!.mac
      if (want && link.mac && want.toLowerCase() !== link.mac.toLowerCase()) throw fail(`${link.name} has MAC ${link.mac}, prevResult says ${want}`)
      const have = (await ctx.guestNs.getAddrs({ index: link.index })).map((x) => `${x.address}/${x.prefix}`)
      for (const ip of opts.prev.ips.filter((i) => i.interface === at)) {
        const [addr, prefix] = ip.address.split('/')
        const canonical = addr!.includes(':') ? (await import('ipaddr.js')).default.parse(addr!).toString() : addr
        if (!have.includes(`${canonical}/${prefix}`)) throw fail(`${link.name} lacks ${ip.address}`, `it has ${have.join(', ') || 'no address'}`)
      }
    }
    if ((mark.op === 'attach-veth' || mark.op === 'ovs-port') && mark.peer) {
      const hostEnd = await ctx.hostNs.getLink(mark.peer)
      if (!hostEnd) throw fail(`the host end ${mark.peer} of ${link.name} is gone`)
      if (mark.op === 'attach-veth') {
        const bridge = mark.bridge ? await ctx.hostNs.getLink(mark.bridge) : undefined
        if (!bridge || hostEnd.master !== bridge.index) throw fail(`${mark.peer} is not a port of bridge ${mark.bridge}`)
        if (opts.op.op === 'attach-veth' && opts.op.firewall !== false) {
          const { plannedFirewall } = await import('../ops/firewall.js')
          const missing = (await plannedFirewall(mark.bridge!)).rules.filter((r) => !r.present)
          if (missing.length) throw fail(`Docker's FORWARD DROP is in force and plumb's ACCEPT rule for ${mark.bridge} is missing`, missing.map((r) => `${r.binary} ${r.hook}`).join(', '))
        }
      }
    }
  })
}

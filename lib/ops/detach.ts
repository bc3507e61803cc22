// detach: undo plumb's work on a guest (links, OVS ports, DHCP clients, moved devices,
// replaced default routes, then bridges and firewall rules left without plumb ports).
// Idempotent, and it never touches what plumb did not make.

import { conflict, usageError } from '../errors.js'
import type { LinkInfo } from '../kernel/types.js'
import { isGuestMark, parseMark, parseSysctlKey, validateIfname } from '../parse/index.js'
import type { GuestRef, RuleMark } from '../parse/index.js'
import { toGuestRef, withGuest } from './context.js'
import type { CommonOptions } from './context.js'
import { cleanupBridges, cleanupOvsBridge } from './bridge.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { forgetInRecord } from './persist.js'
import { readRecord } from './guest-record.js'
import { teardownLink } from './teardown.js'

export interface DetachOptions extends CommonOptions {
  guest: string | GuestRef
  /** one interface; or `all` */
  ifname?: string
  all?: boolean
}

export function validateDetach(o: DetachOptions): { guest: GuestRef; ifname?: string; all: boolean } {
  // `detach host ...`: what plumb made in the host's own netns (a VXLAN port)
  const guest = toGuestRef(o.guest, { allowHostWord: true })
  if (o.ifname !== undefined && o.all) throw usageError('give an interface or --all, not both')
  if (o.ifname === undefined && !o.all) throw usageError('detach needs an interface name or --all', `e.g. plumb detach ${typeof o.guest === 'string' ? o.guest : 'GUEST'} eth1, or --all for everything plumb made there`)
  return { guest, all: o.all ?? false, ...(o.ifname !== undefined ? { ifname: validateIfname(o.ifname) } : {}) }
}


export async function detach(opts: DetachOptions): Promise<OpResult> {
  const v = validateDetach(opts)
  return withGuest(v.guest, { ...opts, allowHost: opts.allowHost ?? v.guest.kind === 'host' }, async (ctx) => {
    const { netns, guestNs } = ctx
    const result = emptyResult('detach', netns.label, opts.dryRun ?? false)
    const links = await guestNs.getLinks()
    let targets: LinkInfo[]
    if (v.ifname) {
      const link = links.find((l) => l.name === v.ifname)
      if (link && !isGuestMark(parseMark(link.alias))) {
        throw conflict(`"${v.ifname}" in ${netns.label} is not plumb's: plumb never deletes what it did not create`, `see plumb's interfaces there: plumb ls ${netns.label}`)
      }
      // Gone already: its published ports may still be there (found in the firewall below).
      targets = link ? [link] : []
    } else {
      targets = links.filter((l) => isGuestMark(parseMark(l.alias)))
    }
    // detach --all also puts back what plumb changed that is not a link: sysctls, name edits,
    // published ports (those are found in the firewall, inside the transaction).
    const state = v.all ? readRecord(netns) : undefined
    return runTx(opts, async (tx) => {
      if (state?.sysctl && Object.keys(state.sysctl).length) {
        // Before the links go: an interface's keys are restored while it still exists.
        const { restoreSysctlsIn } = await import('./guest-sysctl.js')
        await restoreSysctlsIn(tx, netns, guestNs, result)
      }
      if (state?.names) await (await import('./guest-names.js')).undoNamesOf(tx, netns, result)
      if (!v.all) {
        // The sysctls plumb set on this interface go with it: put back (and forget) while it exists.
        const keys = Object.keys(readRecord(netns)?.sysctl ?? {}).filter((k) => targets.some((l) => parseSysctlKey(k).ifname === l.name))
        if (keys.length) await (await import('./guest-sysctl.js')).restoreSysctlsIn(tx, netns, guestNs, result, keys)
      }
      const bridges = new Set<string>()
      const ovsBridges = new Set<string>()
      for (const link of targets) {
        const mark = parseMark(link.alias)!
        await teardownLink(tx, ctx, link, mark, result)
        if (mark.bridge) (mark.op === 'ovs-port' ? ovsBridges : bridges).add(mark.bridge)
      }
      // The guest's published ports and allowed pairs (of that interface, or all), and the
      // rules of bridges left without a plumb port: one read of the tables, one batch.
      await cleanupBridges(tx, ctx.hostNs, [...bridges], result, {
        removing: new Set(targets.map((l) => parseMark(l.alias)!.peer ?? '')),
        alsoRules: (m) => guestRule(m, netns.label, v.ifname, bridges),
      })
      for (const bridge of ovsBridges) await cleanupOvsBridge(tx, bridge, result)
      // Undone, so not to be done again after a restart; and what a restart already took (an
      // interface the container lost stays in its record, to be made again, until detach names it).
      const forgot = await forgetInRecord(tx, opts, result, netns, v.all ? 'all' : [v.ifname!])
      if (targets.length === 0 && tx.lines.length === 0) {
        if (forgot) {
          result.changed = true
          result.messages.push(`nothing to detach in ${netns.label}; forgot ${v.ifname ?? 'everything'} in its record: not made again after a restart`)
        } else {
          result.messages.push(v.ifname ? `nothing to detach: no "${v.ifname}" in ${netns.label} (already detached)` : `nothing to detach: plumb made nothing in ${netns.label}`)
        }
        return result
      }
      result.plan = tx.lines
      result.changed = tx.lines.length > 0
      if (targets.length) result.messages.unshift(`detached ${targets.map((l) => l.name).join(', ')} from ${netns.label}`)
      return result
    })
  })
}

/** A firewall rule that belongs to this guest (or to one of its interfaces, and the bridges it was on). */
function guestRule(m: RuleMark, label: string, ifname: string | undefined, bridges: Set<string>): boolean {
  if (m.op === 'expose') return m.guest === label && (ifname === undefined || m.ifname === ifname)
  if (m.op === 'allow') return (m.a === label || m.b === label) && (ifname === undefined || bridges.has(m.bridge))
  return false
}

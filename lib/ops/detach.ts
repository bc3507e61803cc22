// detach: undo plumb's work on a guest (links, OVS ports, DHCP clients, moved devices,
// replaced default routes, then bridges and firewall rules left without plumb ports).
// Idempotent, and it never touches what plumb did not make.

import { conflict, usageError } from '../errors.js'
import type { LinkInfo } from '../kernel/types.js'
import { parseMark, parseSysctlKey, validateIfname } from '../parse/index.js'
import type { GuestRef, OwnerMark } from '../parse/index.js'
import { ipIn, toGuestRef, withGuest } from './context.js'
import type { CommonOptions, GuestContext } from './context.js'
import { cleanupBridge, cleanupOvsBridge } from './bridge.js'
import { ignoreGone, parseReplacedGateways, restoreDefaultRoute } from './guest-config.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { readRecord } from './guest-record.js'
import type { Tx } from './tx.js'

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

/** What `detach GUEST` undoes: a guest's ends, devices moved into it, and (on `detach host`) the host's own plumb ports (VXLAN). */
export const isGuestMark = (m: OwnerMark | undefined): m is OwnerMark => m !== undefined && (m.role === 'guest' || m.role === 'moved' || m.role === 'port')

export async function detach(opts: DetachOptions): Promise<OpResult> {
  const v = validateDetach(opts)
  return withGuest(v.guest, { ...opts, allowHost: opts.allowHost ?? v.guest.kind === 'host' }, async (ctx) => {
    const { netns, guestNs } = ctx
    const result = emptyResult('detach', netns.label, opts.dryRun ?? false)
    const links = await guestNs.getLinks()
    let targets: LinkInfo[]
    if (v.ifname) {
      const link = links.find((l) => l.name === v.ifname)
      if (!link) {
        result.messages.push(`nothing to detach: no "${v.ifname}" in ${netns.label} (already detached)`)
        return result
      }
      if (!isGuestMark(parseMark(link.alias))) {
        throw conflict(`"${v.ifname}" in ${netns.label} is not plumb's: plumb never deletes what it did not create`, `see plumb's interfaces there: plumb ls ${netns.label}`)
      }
      targets = [link]
    } else {
      targets = links.filter((l) => isGuestMark(parseMark(l.alias)))
    }
    // detach --all also puts back what plumb changed that is not a link: sysctls, name edits.
    const state = v.all ? readRecord(netns) : undefined
    if (targets.length === 0 && !state) {
      result.messages.push(`nothing to detach: plumb made nothing in ${netns.label}`)
      return result
    }
    return runTx(opts, async (tx) => {
      if (state?.sysctl && Object.keys(state.sysctl).length) {
        // Before the links go: an interface's keys are restored while it still exists.
        const { restoreSysctlsIn } = await import('./sysctl.js')
        await restoreSysctlsIn(tx, netns, guestNs, result)
      }
      if (state?.names) await (await import('./names.js')).undoNamesOf(tx, netns, result)
      if (!v.all) {
        // The sysctls plumb set on this interface go with it: put back (and forget) while it exists.
        const keys = Object.keys(readRecord(netns)?.sysctl ?? {}).filter((k) => targets.some((l) => parseSysctlKey(k).ifname === l.name))
        if (keys.length) await (await import('./sysctl.js')).restoreSysctlsIn(tx, netns, guestNs, result, keys)
      }
      const bridges = new Set<string>()
      const ovsBridges = new Set<string>()
      for (const link of targets) {
        const mark = parseMark(link.alias)!
        await teardownLink(tx, ctx, link, mark, result)
        if (mark.bridge) (mark.op === 'ovs-port' ? ovsBridges : bridges).add(mark.bridge)
      }
      for (const bridge of bridges) await cleanupBridge(tx, ctx.hostNs, bridge, result)
      for (const bridge of ovsBridges) await cleanupOvsBridge(tx, bridge, result)
      result.plan = tx.lines
      result.changed = tx.lines.length > 0
      if (targets.length) result.messages.unshift(`detached ${targets.map((l) => l.name).join(', ')} from ${netns.label}`)
      return result
    })
  })
}

/** Remove one plumb link from a guest, with what hangs off it. */
export async function teardownLink(tx: Tx, ctx: GuestContext, link: LinkInfo, mark: OwnerMark, result: OpResult): Promise<void> {
  const { netns, hostNs, guestNs } = ctx
  const ip = (args: string): string => ipIn(netns, args)
  result.interfaces.push({ name: link.name, ...(link.mac ? { mac: link.mac } : {}), mtu: link.mtu, netns: netns.label, kind: link.kind ?? 'device', ...(mark.peer ? { peer: mark.peer } : {}) })

  const dhcp = await import('./dhcp.js')
  await dhcp.stopLeaseOf(tx, netns, link.name, result)

  if (mark.op === 'ovs-port' && mark.peer) {
    const peer = mark.peer
    const ovs = await import('../ovs/index.js')
    await tx.step(`ovs-vsctl --if-exists del-port ${peer}`, () => ovs.delPort(peer))
  }
  if (mark.op === 'vxlan') {
    const { removePort } = await import('./vxlan-port.js')
    await removePort(tx, hostNs, link, mark, result)
    return
  }
  if (mark.role === 'moved') {
    // move-dev: give the device back to the host under its old name.
    const orig = mark.extra?.orig ?? mark.peer ?? link.name
    const hostFd = await (await import('../guest/index.js')).resolveGuest({ kind: 'host' }, { allowHost: true })
    try {
      await tx.step(ip(`link set ${link.name} down`), () => guestNs.setLink(link.index, { up: false }))
      await tx.step(ip(`link set ${link.name} netns 1 name ${orig}`), () => guestNs.setLink(link.index, { nsFd: hostFd.fd, name: orig, alias: mark.extra?.alias ?? '' }))
      if (mark.extra?.up === '1') {
        await tx.step(`ip link set ${orig} up`, async () => {
          const back = await hostNs.getLink(orig)
          if (back) await hostNs.setLink(back.index, { up: true })
        })
      }
    } finally {
      hostFd.close()
    }
  } else {
    // Deleting one end of a veth deletes both; a macvlan/vlan child goes alone.
    await tx.step(ip(`link del ${link.name}`), () => ignoreGone(guestNs.delLink(link.index)))
  }
  for (const old of parseReplacedGateways(mark.gw)) {
    await tx.step(ip(`route replace default${old.gateway ? ` via ${old.gateway}` : ''}${old.dev ? ` dev ${old.dev}` : ''}`), async () => {
      if (await restoreDefaultRoute(guestNs, old.family, old)) result.messages.push(`restored the IPv${old.family} default route${old.gateway ? ` via ${old.gateway}` : ''}`)
    })
  }
}

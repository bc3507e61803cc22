// move-dev: move a host interface into the guest (pipework's --direct-phys, CNI's host-device);
// detach gives it back under its old name and state.

import { conflict, notFound } from '../errors.js'
import { formatMark, parseMark, validateIfname } from '../parse/index.js'
import type { GuestRef, OwnerMark } from '../parse/index.js'
import { resolveGuest } from '../guest/index.js'
import { validateLinkInput } from './link-input.js'
import { ipIn, ipNetnsArg, journalFor, whereOf, withGuest } from './context.js'
import type { CommonOptions } from './context.js'
import { applyGuestConfig, configDiff, formatReplacedGateways, planGateways } from './guest-config.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { returnMovedDevice } from './teardown.js'
import { commonArgs, ipTexts, linkEdit, persist, routeTexts } from './persist.js'
import { leaseIfAsked, sameLeaseIfAsked } from './lease.js'
import { ovsOwner } from './ovs-owner.js'
import type { DhcpLeaseOptions } from './lease.js'

export interface MoveDevOptions extends CommonOptions {
  guest: string | GuestRef
  /** the host interface to move */
  device: string
  ips?: string[]
  routes?: string[]
  /** its name in the guest (default: keep its name) */
  ifname?: string
  /** move it even if it carries the host's default route */
  force?: boolean
  replaceGateway?: boolean
  /** how the `dhcp` IP spec runs its client */
  dhcp?: DhcpLeaseOptions
  /** extra owner-mark fields (the CNI plugin's attachment id: see lib/cni) */
  tags?: Record<string, string>
}

export function validateMoveDev(o: MoveDevOptions) {
  return { ...validateLinkInput(o), device: validateIfname(o.device, 'host interface') }
}

export async function moveDev(opts: MoveDevOptions): Promise<OpResult> {
  const v = validateMoveDev(opts)
  return withGuest(v.guest, opts, async (ctx) => {
    const { netns, hostNs, guestNs } = ctx
    const result = emptyResult('move-dev', netns.label, opts.dryRun ?? false)
    const ifname = v.ifname ?? v.device
    const guestLinks = await guestNs.getLinks()
    const inGuest = guestLinks.find((l) => l.name === ifname)
    let dev = await hostNs.getLink(v.device)
    // Moved into a guest that died since: back on the host under another name, still marked.
    // Given its name back first (as gc would), it moves again: the replay after a restart.
    const hostLinks = dev ? [] : await hostNs.getLinks()
    const returned = hostLinks.find((l) => {
      const m = parseMark(l.alias)
      return m?.role === 'moved' && (m.extra?.orig ?? l.name) === v.device
    })
    if (returned) {
      const was = parseMark(returned.alias)?.extra
      dev = { ...returned, name: v.device, alias: was?.alias ?? '', up: was?.up === '1' }
    }
    if (!dev && inGuest && parseMark(inGuest.alias)?.op === 'move-dev' && parseMark(inGuest.alias)?.extra?.orig === v.device) {
      const differs = await configDiff(guestNs, inGuest, { ips: v.statics, defaults: v.defaults, routes: v.routes }, guestLinks)
      if (differs.length) {
        throw conflict(
          `${v.device} is already moved into ${netns.label} as ${ifname} with a different configuration: it ${differs.join('; ')}`,
          `change addresses with plumb set-ip ${netns.label} ${ifname} ..., or give it back first: plumb detach ${netns.label} ${ifname}`,
        )
      }
      result.interfaces.push({ name: ifname, mtu: inGuest.mtu, netns: netns.label, kind: inGuest.kind ?? 'device' })
      await sameLeaseIfAsked(netns, ifname, v.ips, result)
      result.messages.push(`already moved: ${v.device} is ${netns.label} ${ifname}; nothing changed`)
      return result
    }
    if (!dev) throw notFound(`no interface "${v.device}" on the host`, 'see the host\'s interfaces: ip link')
    if (inGuest) throw conflict(`"${ifname}" already exists in ${netns.label}`, 'give the device another name in the guest with -i')
    if (dev.kind === 'bridge') throw conflict(`"${v.device}" is a bridge; bridges can't change namespace`, `put the guest on it instead: plumb attach-veth ${netns.label} ${v.device}`)
    const hostMark = parseMark(dev.alias)
    if (hostMark) throw conflict(`"${v.device}" is plumb's own ${hostMark.op} ${hostMark.role} end, not a device to move`)
    // The switch's devices stay with the switch: an OVS bridge's own port, or any interface
    // OVS has a row for (on the userspace datapath nothing in the kernel says so).
    const owner = await ovsOwner(v.device, dev)
    if (owner.role === 'bridge') {
      throw conflict(`"${v.device}" is an Open vSwitch bridge; bridges can't change namespace`, `put the guest on it instead: plumb ovs-port ${netns.label} ${v.device}`)
    }
    if (owner.role === 'port') {
      throw conflict(
        `"${v.device}" is ${owner.port === v.device ? 'a port' : `an interface of port "${owner.port}"`} of Open vSwitch bridge "${owner.bridge}": moving it would take it from the switch`,
        `remove it from the switch first (ovs-vsctl del-port ${owner.bridge} ${owner.port}), or give another device`,
      )
    }
    if (!opts.force) {
      const routes = await hostNs.getRoutes()
      if (routes.some((r) => r.dst === 'default' && r.oif === dev.index && r.table === 254)) {
        throw conflict(`"${v.device}" carries the host's default route: moving it would cut the host off`, 'pass --force if you really mean it')
      }
    }
    const gateways = await planGateways(guestNs, v.defaults, ifname, opts.replaceGateway ?? false, guestLinks)
    // What detach needs to give the device back as it was: its name, alias and state.
    const mark: OwnerMark = {
      v: 1,
      role: 'moved',
      op: 'move-dev',
      guest: netns.label,
      ifname,
      extra: { orig: v.device, up: dev.up ? '1' : '0', ...(dev.alias ? { alias: dev.alias } : {}), ...v.tags },
    }
    const gw = formatReplacedGateways(gateways)
    if (gw) mark.gw = gw
    const alias = formatMark(mark)
    const hostNetns = await resolveGuest({ kind: 'host' }, { allowHost: true })
    try {
      return await runTx({ ...opts, journal: journalFor('move-dev', netns) }, async (tx) => {
        if (returned) await returnMovedDevice(tx, hostNs, returned, parseMark(returned.alias)!, hostLinks, result)
        // A move and a rename in one RTM_SETLINK: the device arrives under its guest name.
        tx.intend({ t: 'moved', where: whereOf(netns), name: ifname, orig: v.device, ...(dev.mac ? { mac: dev.mac } : {}), ...(dev.alias ? { alias: dev.alias } : {}), up: dev.up })
        await tx.step(
          `ip link set ${v.device} netns ${ipNetnsArg(netns)}${ifname !== v.device ? ` name ${ifname}` : ''}`,
          () => hostNs.setLink(dev.index, { nsFd: netns.fd, name: ifname }),
          {
            line: ipIn(netns, `link set ${ifname} netns 1 name ${v.device}`),
            run: async () => {
              const l = await guestNs.getLink(ifname)
              if (!l) return
              await guestNs.setLink(l.index, { nsFd: hostNetns.fd, name: v.device, alias: dev.alias ?? '' })
              // A netns move takes a device down: one that was up on the host goes up again.
              if (!dev.up) return
              const back = await hostNs.getLink(v.device)
              if (back) await hostNs.setLink(back.index, { up: true })
            },
          },
        )
        const moved = tx.dryRun ? undefined : await guestNs.getLink(ifname)
        if (moved) await guestNs.setLink(moved.index, { alias })
        result.interfaces.push({ name: ifname, ...(dev.mac ? { mac: dev.mac } : {}), mtu: dev.mtu, netns: netns.label, kind: dev.kind ?? 'device' })
        await applyGuestConfig(tx, { netns, guestNs, ifname, index: moved?.index, ips: v.statics, routes: v.routes, gateways, up: true }, result, 0)
        await leaseIfAsked(tx, ctx, ifname, v.ips, opts.dhcp, result)
        await persist(tx, opts, result, [
          {
            netns,
            edit: linkEdit('move-dev', {
              device: v.device,
              ifname,
              ips: ipTexts(v.ips),
              routes: routeTexts(v.routes),
              force: opts.force || undefined,
              replaceGateway: opts.replaceGateway || undefined,
              dhcp: opts.dhcp,
              ...commonArgs(opts),
            }),
          },
        ])
        result.changed = true
        result.mark = alias
        result.plan = tx.lines
        result.messages.push(`moved ${v.device} into ${netns.label} as ${ifname}${v.statics.length ? `: ${v.statics.map((s) => s.cidr).join(', ')}` : ''}`)
        return result
      })
    } finally {
      hostNetns.close()
    }
  })
}

// vlan: put the guest on VLAN VID through a parent. An OVS bridge gets an access port tagged
// VID; a host NIC gets an 802.1q child born in the guest; a Linux bridge needs VLAN filtering.

import { existsSync } from 'node:fs'
import { PlumbError } from '../errors.js'
import { parseVid, validateIfname } from '../parse/index.js'
import type { GuestRef } from '../parse/index.js'
import { validateLinkInput } from './link-input.js'
import { createChildLink, hostParent } from './child-link.js'
import { withGuest } from './context.js'
import { mayBeOvsDevice, ovsOwner } from './ovs-owner.js'
import type { CommonOptions } from './context.js'
import type { OpResult } from './result.js'
import type { DhcpLeaseOptions } from './lease.js'

export interface VlanOptions extends CommonOptions {
  guest: string | GuestRef
  /** a host NIC, an OVS bridge, or a Linux bridge */
  parent: string
  vid: number | string
  ips?: string[]
  routes?: string[]
  ifname?: string
  mac?: string
  mtu?: number | string
  replaceGateway?: boolean
  /** how the `dhcp` IP spec runs its client */
  dhcp?: DhcpLeaseOptions
  /** extra owner-mark fields (the CNI plugin's attachment id: see lib/cni) */
  tags?: Record<string, string>
}

export function validateVlan(o: VlanOptions) {
  return { ...validateLinkInput(o), parent: validateIfname(o.parent, 'parent interface'), vid: parseVid(o.vid) }
}

export async function vlan(opts: VlanOptions): Promise<OpResult> {
  const v = validateVlan(opts)
  return withGuest(v.guest, opts, async (ctx) => {
    const link = await ctx.hostNs.getLink(v.parent)
    // An OVS bridge's kernel side is an 'openvswitch' or 'tun' link (or none, while its
    // vswitchd is down): only then is OVSDB asked, and "cannot ask" is not "no".
    const owner = !link || mayBeOvsDevice(link) ? await ovsOwner(v.parent, link) : undefined
    if (owner?.role === 'bridge') {
      const { ovsPortIn, validateOvsPort } = await import('./ovs-port.js')
      const portOpts = { ...opts, bridge: v.parent, tag: v.vid }
      const result = await ovsPortIn(ctx, validateOvsPort(portOpts), portOpts)
      result.op = 'vlan'
      return result
    }
    if (link?.kind === 'bridge') {
      if (!existsSync(`/sys/class/net/${v.parent}/bridge/vlan_filtering`)) {
        throw new PlumbError('UNSUPPORTED', `this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING), needed to tag ports of Linux bridge "${v.parent}"`, {
          hint: `use an Open vSwitch bridge instead: plumb ovs-port ${ctx.netns.label} BRIDGE --tag ${v.vid} (create one with --create-bridge)`,
        })
      }
      throw new PlumbError('UNSUPPORTED', `VLAN filtering on Linux bridge "${v.parent}" is not driven by plumb yet`, {
        hint: `use an Open vSwitch bridge: plumb ovs-port ${ctx.netns.label} BRIDGE --tag ${v.vid}`,
      })
    }
    const parent = await hostParent(ctx, v.parent, 'vlan', { link, ...(owner ? { owner } : {}) })
    return createChildLink(ctx, v, {
      op: 'vlan',
      parent,
      identity: { vid: String(v.vid) },
      ipType: `type vlan id ${v.vid}`,
      recordArgs: { parent: parent.name, vid: v.vid },
      create: async (name, mtu, alias) => {
        try {
          await ctx.hostNs.createVlan({ name, parent: parent.index, nsFd: ctx.netns.fd, vid: v.vid, mtu, alias, ...(v.mac ? { mac: v.mac } : {}) })
        } catch (err) {
          if (err instanceof PlumbError && err.code === 'UNSUPPORTED') {
            throw new PlumbError('UNSUPPORTED', `this kernel has no 802.1q VLAN support (the "vlan" link type, module 8021q), needed for a VLAN ${v.vid} child of "${v.parent}"`, {
              hint: `use an Open vSwitch access port instead: plumb vlan ${ctx.netns.label} OVSBRIDGE ${v.vid} (or plumb ovs-port ... --tag ${v.vid})`,
              cause: err,
            })
          }
          throw err
        }
      },
    }, opts)
  })
}

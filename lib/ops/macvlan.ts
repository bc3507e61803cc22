// macvlan: a macvlan child of a host NIC, born inside the guest.

import { PlumbError } from '../errors.js'
import { errnoOf } from '../kernel/index.js'
import { parseMacvlanMode, validateIfname } from '../parse/index.js'
import type { GuestRef } from '../parse/index.js'
import { validateLinkInput } from './link-input.js'
import { createChildLink, hostParent } from './child-link.js'
import { withGuest } from './context.js'
import { addressHolders, refuseHeld } from './segment.js'
import type { CommonOptions } from './context.js'
import type { OpResult } from './result.js'
import type { DhcpLeaseOptions } from './lease.js'

export interface MacvlanOptions extends CommonOptions {
  guest: string | GuestRef
  /** the host NIC (never a bridge) */
  parent: string
  ips?: string[]
  routes?: string[]
  ifname?: string
  mode?: string
  mac?: string
  mtu?: number | string
  replaceGateway?: boolean
  /** how the `dhcp` IP spec runs its client */
  dhcp?: DhcpLeaseOptions
  /** extra owner-mark fields (the CNI plugin's attachment id: see lib/cni) */
  tags?: Record<string, string>
}

export function validateMacvlan(o: MacvlanOptions) {
  return { ...validateLinkInput(o), parent: validateIfname(o.parent, 'parent interface'), mode: parseMacvlanMode(o.mode ?? 'bridge') }
}

export async function macvlan(opts: MacvlanOptions): Promise<OpResult> {
  const v = validateMacvlan(opts)
  return withGuest(v.guest, opts, async (ctx) => {
    const parent = await hostParent(ctx, v.parent, 'macvlan')
    // The parent's own address is on the LAN the macvlan joins (one dump). Its macvlan siblings
    // live in netns the host has no view of: not checked.
    refuseHeld(await addressHolders(ctx.hostNs, v.statics, { index: parent.index, holder: `the parent ${parent.name} itself (the host's address)` }, []), `the LAN of ${parent.name}`)
    return createChildLink(ctx, v, {
      op: 'macvlan',
      parent,
      identity: { mode: v.mode },
      ipType: `type macvlan mode ${v.mode}`,
      recordArgs: { parent: parent.name, mode: v.mode },
      create: async (name, mtu, alias) => {
        try {
          await ctx.hostNs.createMacvlan({ name, parent: parent.index, nsFd: ctx.netns.fd, mode: v.mode, mtu, alias, ...(v.mac ? { mac: v.mac } : {}) })
        } catch (err) {
          // The MTU was checked already; the EINVAL left is passthru's rule: a passthru child
          // takes its parent alone (none beside it, and none while others exist).
          if (err instanceof PlumbError && errnoOf(err.cause) === 'EINVAL') {
            throw new PlumbError('CONFLICT', `failed to create macvlan "${name}" (mode ${v.mode}) on "${parent.name}": the kernel refused it (EINVAL): ${v.mode === 'passthru' ? `"${parent.name}" already has macvlan children` : `"${parent.name}" already has a passthru macvlan`}`, {
              hint: `a passthru macvlan takes its parent for itself: detach the other macvlans of ${parent.name} (plumb ls) or use another mode`,
              cause: err,
            })
          }
          throw err
        }
      },
    }, opts)
  })
}

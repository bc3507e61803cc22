// Taking plumb's links apart, shared by detach (a guest's links), gc (what dead guests left on
// the host) and the CNI plugin's DEL (one attachment, found by its tags, netns or not).

import type { LinkInfo, NetHandle } from '../kernel/types.js'
import type { OwnerMark } from '../parse/index.js'
import { ipIn } from './context.js'
import type { GuestContext } from './context.js'
import { ignoreGone, parseReplacedGateways, restoreDefaultRoute } from './guest-config.js'
import type { OpResult } from './result.js'
import type { Tx } from './tx.js'

/** Remove one plumb link from a guest, with what hangs off it. */
export async function teardownLink(tx: Tx, ctx: GuestContext, link: LinkInfo, mark: OwnerMark, result: OpResult): Promise<void> {
  const { netns, hostNs, guestNs } = ctx
  const ip = (args: string): string => ipIn(netns, args)
  result.interfaces.push({ name: link.name, ...(link.mac ? { mac: link.mac } : {}), mtu: link.mtu, netns: netns.label, kind: link.kind ?? 'device', ...(mark.peer ? { peer: mark.peer } : {}) })

  const dhcp = await import('./lease.js')
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

/**
 * A moved device (move-dev) whose guest died is back in the host's netns, maybe renamed by the
 * kernel: give it its old name (unless that is taken meanwhile), alias and up state.
 */
export async function returnMovedDevice(tx: Tx, hostNs: NetHandle, link: LinkInfo, mark: OwnerMark, hostLinks: LinkInfo[], result: OpResult): Promise<void> {
  const orig = mark.extra?.orig ?? link.name
  const taken = orig !== link.name && hostLinks.some((x) => x.name === orig)
  await tx.step(`ip link set ${link.name}${taken ? '' : ` name ${orig}`} alias '${mark.extra?.alias ?? ''}'${mark.extra?.up === '1' ? ' up' : ''}`, () =>
    hostNs.setLink(link.index, { ...(taken ? {} : { name: orig }), alias: mark.extra?.alias ?? '', ...(mark.extra?.up === '1' ? { up: true } : {}) }),
  )
  result.messages.push(`gave ${orig} back to the host (its guest ${mark.guest} is gone)`)
}

// Taking a VXLAN port away (vxlan --del, detach host, gc): shared by those three ops.

import type { LinkInfo, NetHandle } from '../kernel/types.js'
import type { OwnerMark } from '../parse/index.js'
import { ignoreGone } from './guest-config.js'
import type { OpResult } from './result.js'
import type { Tx } from './tx.js'

/** Delete a VXLAN port and give its bridge back the MTU it had (the caller then cleans the bridge up). */
export async function removePort(tx: Tx, hostNs: NetHandle, link: LinkInfo, mark: OwnerMark, result: OpResult): Promise<void> {
  await tx.step(`ip link del ${link.name}`, () => ignoreGone(hostNs.delLink(link.index)))
  const brmtu = Number(mark.extra?.brmtu)
  const br = mark.bridge ? await hostNs.getLink(mark.bridge) : undefined
  if (br && Number.isInteger(brmtu) && br.mtu !== brmtu) {
    await tx.step(`ip link set ${br.name} mtu ${brmtu}`, () => ignoreGone(hostNs.setLink(br.index, { mtu: brmtu })))
  }
  result.messages.push(`removed ${link.name}: bridge ${mark.bridge} left VNI ${mark.extra?.vni ?? '?'}`)
}

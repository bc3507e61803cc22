// Whether a host interface name belongs to Open vSwitch (a bridge, or a port of one), asked of
// OVSDB; "don't know" (exit 5 naming OVS) when it cannot be asked, never "no".

import { PlumbError, asPlumbError } from '../errors.js'
import type { LinkInfo } from '../kernel/types.js'

export type OvsOwner = { role: 'bridge' } | { role: 'port'; port: string; bridge: string } | { role: 'none' }

/**
 * The kinds the kernel gives OVS's own devices: 'openvswitch' (an internal port of the kernel
 * datapath, or a port enslaved to it) and 'tun' (the tap of a userspace-datapath bridge). A
 * link of any other kind is not an OVS bridge, whatever OVSDB says: no need to ask.
 */
export function mayBeOvsDevice(link: LinkInfo): boolean {
  return link.kind === 'openvswitch' || link.kind === 'tun' || link.slaveKind === 'openvswitch'
}

/**
 * What OVS makes of `name` (`link`: the kernel's link of that name, if any, for the message).
 * When OVSDB cannot be asked: 'none' only if OVS is not on this host at all; otherwise a
 * PlumbError (UNSUPPORTED unless it was a permission problem) naming Open vSwitch, since
 * plumb would otherwise plug into, move, or shadow a device the switch may own.
 */
export async function ovsOwner(name: string, link: LinkInfo | undefined): Promise<OvsOwner> {
  const ovs = await import('../ovs/index.js')
  try {
    const rows = await ovs.rowsNamed(name)
    if (rows.bridge) return { role: 'bridge' }
    if (rows.port) return { role: 'port', port: rows.port.name, bridge: rows.port.bridge }
    return { role: 'none' }
  } catch (err) {
    if (ovs.ovsNotHere(err)) return { role: 'none' }
    const e = asPlumbError(err)
    const seen = link ? `the kernel has it as a ${link.kind ?? 'network'} interface` : 'the kernel has no interface of that name'
    throw new PlumbError(e.code === 'PERMISSION' ? 'PERMISSION' : 'UNSUPPORTED', `${e.message} (${seen})`, {
      hint: `plumb does not touch what Open vSwitch may own before it can ask: ${e.hint ?? ovs.START_HINT}`,
      cause: err,
    })
  }
}

// IPv6 on the interfaces plumb configures: turned on per interface when (and only when) an IPv6
// address is asked for.
//
// Docker starts containers with net.ipv6.conf.all/default.disable_ipv6=1 in their netns when the
// daemon has no IPv6; a new interface inherits `default`, and the kernel then refuses every IPv6
// address on it with EACCES ("IPv6 is disabled on this device"). Only the interface's own switch
// is flipped, never all/default: the guest's other interfaces stay as the engine set them. There
// is no netlink attribute for it (IFLA_INET6_CONF is read-only): it is the sysctl file, written
// from inside the guest's netns.
//
// A link an op makes (or moves in) gets the switch with no read and no record: deleting the link
// (or giving it back) is the undo. set-ip, on an interface that was there before, goes through
// the guest record instead, as `plumb sysctl` does (./sysctl.ts): the value found is kept, so the
// rollback, `set-ip --del` of the interface's last IPv6 address and `detach --all` put it back.

import { existsSync } from 'node:fs'
import { PlumbError } from '../errors.js'
import type { NetHandle } from '../kernel/types.js'
import type { Netns } from '../guest/index.js'
import { parseSysctlKey } from '../parse/index.js'
import type { SysctlKey } from '../parse/index.js'
import { inGuest } from './context.js'
import type { BatchStep } from './tx.js'

/** net.ipv6.conf.IFNAME.disable_ipv6 (an interface name's own dots kept apart from sysctl's). */
export const disableIpv6Key = (ifname: string): SysctlKey => parseSysctlKey(`net/ipv6/conf/${ifname}/disable_ipv6`)

/**
 * The step that turns IPv6 on before an IPv6 address goes on `ifname`, a link this op has just
 * made or moved in, for applyGuestConfig's batch: setSysctl writes the file before its promise
 * settles, so the address that follows in the batch finds IPv6 on. No undo: the link's deletion is it.
 */
export function enableIpv6Step(netns: Netns, guestNs: NetHandle, ifname: string): BatchStep<unknown> {
  const k = disableIpv6Key(ifname)
  return {
    line: inGuest(netns, `sysctl -qw ${k.key}=0`),
    run: async () => {
      try {
        await guestNs.setSysctl(k.path, '0')
      } catch (err) {
        // a kernel booted with ipv6.disable=1 has no /proc/sys/net/ipv6 at all
        if (!existsSync('/proc/sys/net/ipv6')) {
          throw new PlumbError('UNSUPPORTED', `failed to turn on IPv6 on "${ifname}" in ${guestNs.label}: this kernel has IPv6 turned off (no /proc/sys/net/ipv6)`, {
            hint: 'boot without ipv6.disable=1, or give IPv4 addresses only',
            cause: err,
          })
        }
        throw err
      }
    },
  }
}

// A DHCP network for the `plumb dhcp` / `dhcp` IP spec tests: a Linux bridge on the host (what
// plumb attaches guests to) with a real dnsmasq in a throwaway netns plugged into it, logging
// every DHCP packet. Everything carries the test's pt- id and goes in teardown.

import { ipJson, makeBridge, makeNetns, sh, shQuiet, startDnsmasq, uniq, reserveOctet } from '../helpers/index.js'
import type { IpObject, Teardown } from '../helpers/index.js'
import { hostFileHash, hostHashes, pidsMentioning } from './dhcp-lab.js'
import { sweepHost } from './ops-fixture.js'

export { hostFileHash, hostHashes, pidsMentioning }

export interface HostDhcpLab {
  /** pt-xxxxxx: every name of this test contains it */
  id: string
  /** the host bridge guests are attached to */
  br: string
  /** '198.18.X': the lab's /24; the server is .1, leases .100-.150 for 2 minutes */
  net: string
  srvNs: string
  logText(): string
  /** lines of dnsmasq's log matching re */
  count(re: RegExp): number
  /** host links that are ports of the bridge, the server's own port left out */
  guestPorts(): Promise<string[]>
}

/**
 * The lab; `server: false` leaves the bridge without a DHCP server (the no-offer case).
 * `forwardAccept` lets bridged frames through Docker's FORWARD DROP (br_netfilter) with a rule of
 * the test's own, for guests plumb puts on the LAN without a bridge port of its own (macvlan,
 * move-dev), where plumb adds no rule; attach-veth tests leave it off: plumb adds its own.
 */
export async function makeHostDhcpLab(t: Teardown, opts: { server?: boolean; forwardAccept?: boolean } = {}): Promise<HostDhcpLab> {
  // first, so released last: the lab's /24, then whatever plumb made for this test on the host
  const net = `198.18.${reserveOctet(t)}`
  const id = uniq()
  t.teardown(() => sweepHost(id))
  const br = await makeBridge(t, `${id}b`)
  const srvNs = await makeNetns(t, { name: `${id}s`, loUp: true })
  const srvPort = `${id}d`
  await sh('ip', ['link', 'add', srvPort, 'type', 'veth', 'peer', 'name', 'pt-srv', 'netns', srvNs])
  await sh('ip', ['link', 'set', srvPort, 'master', br, 'up'])
  await sh('ip', ['-n', srvNs, 'addr', 'add', `${net}.1/24`, 'dev', 'pt-srv'])
  await sh('ip', ['-n', srvNs, 'link', 'set', 'pt-srv', 'up'])

  if (opts.forwardAccept) {
    const rule = ['FORWARD', '-i', br, '-o', br, '-m', 'comment', '--comment', `pt-lab:${id}`, '-j', 'ACCEPT']
    await sh('iptables', ['-w', '-I', ...rule.slice(0, 1), '1', ...rule.slice(1)])
    t.teardown(async () => void (await shQuiet('iptables', ['-w', '-D', ...rule])))
  }

  const { logText, count } = await startDnsmasq(t, srvNs, 'pt-srv', net, opts)
  return {
    id,
    br,
    net,
    srvNs,
    logText,
    count,
    async guestPorts() {
      const links = await ipJson(['link', 'show', 'master', br]).catch(() => [] as IpObject[])
      return links.map((l) => String(l.ifname)).filter((n) => n !== srvPort)
    },
  }
}

/** An address inside the lab's DHCP range. */
export function inRange(address: string | undefined, net: string): boolean {
  if (!address?.startsWith(`${net}.`)) return false
  const last = Number(address.split('.')[3])
  return last >= 100 && last <= 150
}

export const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

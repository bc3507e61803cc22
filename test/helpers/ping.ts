// Connectivity checks with the host's iputils ping run inside a netns (not the guest's busybox),
// refusing any address outside the ranges tests may use.

import ipaddr from 'ipaddr.js'
import { execa } from 'execa'
import { nsArgv } from './netns.js'
import type { NsTarget } from './netns.js'

// TESTBED.md: tests only talk to 198.18.0.0/15 and 2001:db8::/32 (plus loopback and link-local,
// which never leave the test's own links).
const ALLOWED = ['198.18.0.0/15', '127.0.0.0/8', '2001:db8::/32', '::1/128', 'fe80::/10'].map((c) => ipaddr.parseCIDR(c))

export function assertTestAddress(addr: string): void {
  let ip: ipaddr.IPv4 | ipaddr.IPv6
  try {
    ip = ipaddr.parse(addr)
  } catch {
    throw new Error(`not an IP address: "${addr}"`)
  }
  if (!ALLOWED.some((range) => range[0].kind() === ip.kind() && ip.match(range))) {
    throw new Error(`refusing to send test traffic to ${addr}: tests use only 198.18.0.0/15 and 2001:db8::/32`)
  }
}

/**
 * true when `addr` answers `count` echo requests from the host or a netns / netns file / pid /
 * container (`{ container: 'pt-…' }` pings from that container's netns with the HOST's ping).
 */
export async function ping(from: NsTarget, addr: string, opts: { count?: number; timeout?: number } = {}): Promise<boolean> {
  const { count = 1, timeout = 2 } = opts
  assertTestAddress(addr)
  // -i 0.2: no reason to wait a second between probes; -w bounds the whole run.
  const [cmd, args] = nsArgv(from, 'ping', ['-n', '-q', '-c', String(count), '-i', '0.2', '-W', String(timeout), '-w', String(timeout + count), addr])
  const res = await execa(cmd, args, { reject: false, timeout: (timeout + count + 5) * 1000 })
  return res.exitCode === 0
}

// A real DHCP server for tests: dnsmasq in a netns, serving one /24 on one interface, logging
// every DHCP packet to a file the tests read; stopped (by pid) and its files removed in teardown.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from './env.js'
import { spawnIn } from './process.js'
import type { BgProcess } from './process.js'
import type { Teardown } from './env.js'

export interface Dnsmasq {
  /** its log file */
  log: string
  /** its lease file */
  leaseFile: string
  /** absent with `server: false` */
  proc?: BgProcess
  /** the log so far */
  logText(): string
  /** lines of the log matching re */
  count(re: RegExp): number
}

/**
 * dnsmasq in `netns` on `iface`, leasing `${net}.100-150` for 2 minutes, with `${net}.1` as the
 * router and DNS server. `server: false` makes only the (empty) log: the no-offer case.
 */
export async function startDnsmasq(t: Teardown, netns: string, iface: string, net: string, opts: { server?: boolean } = {}): Promise<Dnsmasq> {
  if (!/^198\.1[89]\.\d{1,3}$/.test(net)) throw new Error(`DHCP test ranges must be inside 198.18.0.0/15, got "${net}"`)
  const dir = mkdtempSync('/run/pt-dhcp-')
  const leaseFile = join(dir, 'leases')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const log = join(dir, 'dnsmasq.log')
  let proc: BgProcess | undefined
  if (opts.server !== false) {
    proc = spawnIn(t, netns, 'dnsmasq', [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--port=0',
      '--user=root',
      `--interface=${iface}`,
      '--bind-interfaces',
      // no ICMP probe of a candidate address before the offer: it only slows the tests down
      '--no-ping',
      `--dhcp-range=${net}.100,${net}.150,2m`,
      `--dhcp-leasefile=${leaseFile}`,
      '--log-dhcp',
      `--log-facility=${log}`,
      `--dhcp-option=option:router,${net}.1`,
      `--dhcp-option=option:dns-server,${net}.1`,
      '--pid-file=',
    ])
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('DHCP, IP range'), { timeout: 10_000, what: 'dnsmasq to start' })
  }
  const logText = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '')
  return { log, leaseFile, ...(proc ? { proc } : {}), logText, count: (re) => logText().split('\n').filter((l) => re.test(l)).length }
}

// Background processes a test starts (a DHCP server in a netns, a listener), stopped by their own pid in teardown.

import { execa } from 'execa'
import type { ResultPromise } from 'execa'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Teardown } from './env.js'
import { nsArgv } from './netns.js'
import type { NsTarget } from './netns.js'

const BG_OPTS = { reject: false, stdin: 'ignore', forceKillAfterDelay: 2_000 } as const
export type BgProcess = ResultPromise<typeof BG_OPTS>

/** A long-running command in the host or a netns; SIGTERM (then SIGKILL) to its pid in teardown. */
export function spawnIn(t: Teardown, target: NsTarget, cmd: string, args: string[]): BgProcess {
  const [c, a] = nsArgv(target, cmd, args)
  // nsenter execs the command, so the pid we hold is the command's own.
  const proc = execa(c, a, BG_OPTS)
  t.teardown(async () => {
    if (proc.exitCode === null) proc.kill('SIGTERM')
    await proc
  })
  return proc
}

/**
 * A real DHCP server (dnsmasq) on `iface` inside `netns`, handing out
 * `${net}.100-150` (net like '198.18.7'), 2-minute leases. `iface` must already hold an address
 * in that subnet. The lease file lives in a private pt- dir removed in teardown.
 */
export function startDnsmasq(t: Teardown, netns: string, iface: string, net: string): { proc: BgProcess; leaseFile: string } {
  if (!/^198\.1[89]\.\d{1,3}$/.test(net)) throw new Error(`DHCP test ranges must be inside 198.18.0.0/15, got "${net}"`)
  const dir = mkdtempSync('/tmp/pt-dnsmasq-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const leaseFile = join(dir, 'leases')
  const proc = spawnIn(t, netns, 'dnsmasq', [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--port=0', // DHCP only: no DNS listener to collide with the host's
    `--interface=${iface}`,
    '--bind-interfaces',
    `--dhcp-range=${net}.100,${net}.150,2m`,
    `--dhcp-leasefile=${leaseFile}`,
    `--pid-file=${join(dir, 'pid')}`,
  ])
  return { proc, leaseFile }
}

// A throwaway DHCP network for lib/dhcp's tests: a server netns holding a bridge and a real dnsmasq
// (logging every DHCP packet), and client netns or containers plugged into it with veths.

import { createHash } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { makeBridge, makeNetns, sh, startDnsmasq, uniq, reserveOctet } from '../helpers/index.js'
import type { BgProcess, Teardown } from '../helpers/index.js'

export interface DhcpLab {
  /** server netns name */
  srv: string
  /** '198.19.X': the lab's /24 */
  net: string
  log: string
  proc?: BgProcess
  /** dnsmasq's log so far */
  logText(): string
  /** lines of dnsmasq's log matching re */
  count(re: RegExp): number
  /** a fresh client netns with `eth1` on the lab's bridge */
  addClient(t: Teardown): Promise<{ ns: string; nsPath: string; ifname: string }>
  /** an `eth1` on the lab's bridge, born inside the netns of `pid` (a container's init) */
  plugPid(pid: number): Promise<string>
}

let vethSeq = 0

/** The lab; `server: false` leaves the bridge without a DHCP server (for the no-offer case). */
export async function makeDhcpLab(t: Teardown, opts: { server?: boolean } = {}): Promise<DhcpLab> {
  const net = `198.19.${reserveOctet(t, '198.19', [1, 251])}`
  const srv = await makeNetns(t, { name: uniq('srv'), loUp: true })
  await makeBridge(t, 'pt-br', { netns: srv })
  await sh('ip', ['-n', srv, 'addr', 'add', `${net}.1/24`, 'dev', 'pt-br'])
  const server = await startDnsmasq(t, srv, 'pt-br', net, opts)

  const plugInto = async (target: string) => {
    const host = `pt-v${++vethSeq}`
    await sh('ip', ['-n', srv, 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', target])
    await sh('ip', ['-n', srv, 'link', 'set', host, 'master', 'pt-br', 'up'])
    return host
  }

  return {
    srv,
    net,
    ...server,
    async addClient(tt) {
      const ns = await makeNetns(tt, { name: uniq('c'), loUp: true })
      await plugInto(ns)
      await sh('ip', ['-n', ns, 'link', 'set', 'eth1', 'up'])
      return { ns, nsPath: `/run/netns/${ns}`, ifname: 'eth1' }
    },
    async plugPid(pid) {
      await plugInto(String(pid))
      await sh('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', 'link', 'set', 'eth1', 'up'])
      return 'eth1'
    },
  }
}

/** sha256 of a host file ('absent' if it is not there): the host's resolver must never change. */
export function hostFileHash(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex')
  } catch {
    return 'absent'
  }
}

/** The host files no DHCP test may change: the resolver and the hostname. */
export const HOST_FILES = ['/etc/resolv.conf', '/etc/hostname']

/** Their hashes now, to compare before and after: `t.deepEqual(hostHashes(), before)`. */
export const hostHashes = (): string[] => HOST_FILES.map(hostFileHash)

/** pids of live processes whose argv mentions `needle` (a state dir): what must be gone after a stop. */
export function pidsMentioning(needle: string): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')
      if (argv.some((a) => a.includes(needle))) out.push(Number(d))
    } catch {
      /* exited meanwhile */
    }
  }
  return out
}

/** The IPv4 address objects `ip -j addr` shows on ifname in a netns file. */
export async function v4Addrs(nsPath: string, ifname: string): Promise<Array<{ local: string; prefixlen: number; valid_life_time: number; preferred_life_time: number }>> {
  const out = await sh('nsenter', [`--net=${nsPath}`, 'ip', '-j', '-4', 'addr', 'show', 'dev', ifname]).catch(() => '[]')
  const j = JSON.parse(out || '[]') as Array<{ addr_info?: Array<{ family: string; local: string; prefixlen: number; valid_life_time: number; preferred_life_time: number }> }>
  return (j[0]?.addr_info ?? []).filter((a) => a.family === 'inet')
}

export async function defaultRoute(nsPath: string): Promise<string | undefined> {
  const out = await sh('nsenter', [`--net=${nsPath}`, 'ip', '-j', '-4', 'route', 'show', 'default']).catch(() => '[]')
  return (JSON.parse(out || '[]') as Array<{ gateway?: string }>)[0]?.gateway
}

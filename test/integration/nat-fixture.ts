// A host with Docker's rules absent, for the NAT tests: a throwaway netns acting as the host
// (plumb runs in it through `nsenter --net`, so its iptables has no Docker chains and its
// FORWARD policy is ACCEPT), a "far" netns behind one of its interfaces (another machine), two
// bridges with addresses and ip netns guests on them. The dockerd of this machine is shared and
// cannot be stopped: this is how "without Docker" is tested. The host netns starts with
// ip_forward off, so the tests see plumb turn it on and put it back.
// nsenter and not `ip netns exec`: the latter gives plumb a mount namespace of its own, and the
// ip netns a lab makes there (their /run/netns bind mounts) would be seen by nothing outside it.

import { execa } from 'execa'
import { PLUMB_BIN, makeNetns, sh, shQuiet, uniq } from '../helpers/index.js'
import type { CliResult, Teardown } from '../helpers/index.js'

export interface NatLab {
  id: string
  /** the netns acting as the host */
  host: string
  /** another machine, behind the host's uplink */
  far: string
  uplink: string
  /** the host's address on the uplink, and the far end's */
  upAddr: string
  farAddr: string
  /** a bridge with 198.18.1.1/24 and one with 198.18.2.1/24, both in the host */
  br: string
  brAddr: string
  br2: string
  br2Addr: string
  /** ip netns guests made and attached by guest() */
  guest(name: string, bridge: string, addr: string): Promise<string>
  /** plumb run in the host netns; --json output parsed */
  plumb(...args: string[]): Promise<CliResult>
  /** the host netns's iptables-save (both tables), normalised */
  save(): Promise<string>
  sysctl(key: string): Promise<string>
}

/**
 * iptables-save without its comments and counters, and without tables that hold nothing (the
 * nft backend creates a table on first use and never drops it: an empty one equals none).
 */
export function normalizeSave(text: string): string {
  const out: string[] = []
  let block: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\[\d+:\d+\]/g, '[0:0]').trimEnd()
    if (line === '' || line.startsWith('#')) continue
    block.push(line)
    if (line !== 'COMMIT') continue
    const empty = block.every((l) => l.startsWith('*') || l === 'COMMIT' || /^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT \[0:0\]$/.test(l))
    if (!empty) out.push(...block)
    block = []
  }
  return out.join('\n')
}

export async function natLab(t: Teardown): Promise<NatLab> {
  const id = uniq()
  const ns = async (suffix: string): Promise<string> => {
    const name = await makeNetns(t, { name: `${id}${suffix}`, loUp: true })
    return name
  }
  const host = await ns('h')
  const far = await ns('f')
  const inHost = (...args: string[]): Promise<string> => sh('ip', ['netns', 'exec', host, ...args])
  await inHost('sysctl', '-qw', 'net.ipv4.ip_forward=0')
  const uplink = `${id}u`
  await sh('ip', ['-n', host, 'link', 'add', uplink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', far])
  await sh('ip', ['-n', host, 'addr', 'add', '198.18.250.1/24', 'dev', uplink])
  await sh('ip', ['-n', host, 'link', 'set', uplink, 'up'])
  await sh('ip', ['-n', far, 'addr', 'add', '198.18.250.2/24', 'dev', 'eth0'])
  await sh('ip', ['-n', far, 'link', 'set', 'eth0', 'up'])
  // The far end has no route to the guests' subnets: only the host's address answers it back.
  const bridge = async (name: string, addr: string): Promise<void> => {
    await sh('ip', ['-n', host, 'link', 'add', name, 'type', 'bridge'])
    await sh('ip', ['-n', host, 'addr', 'add', addr, 'dev', name])
    await sh('ip', ['-n', host, 'link', 'set', name, 'up'])
  }
  const br = `${id}b`
  const br2 = `${id}c`
  await bridge(br, '198.18.1.1/24')
  await bridge(br2, '198.18.2.1/24')
  const plumb = async (...args: string[]): Promise<CliResult> => {
    const r = await execa('nsenter', [`--net=/run/netns/${host}`, process.execPath, PLUMB_BIN, ...args], { reject: false, timeout: 60_000, stdin: 'ignore' })
    const res: CliResult = { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }
    if (args.includes('--json')) {
      try {
        res.json = JSON.parse(res.exitCode === 0 ? res.stdout : res.stderr.trim().split('\n').pop()!)
      } catch {
        // left undefined: the test's assertion on it fails with the output in its message
      }
    }
    return res
  }
  return {
    id,
    host,
    far,
    uplink,
    upAddr: '198.18.250.1',
    farAddr: '198.18.250.2',
    br,
    brAddr: '198.18.1.1',
    br2,
    br2Addr: '198.18.2.1',
    async guest(name, bridgeName, addr) {
      const g = await ns(name)
      const gw = bridgeName === br ? '198.18.1.1' : '198.18.2.1'
      const r = await plumb('attach-veth', `netns:${g}`, bridgeName, `${addr}/24@${gw}`)
      if (r.exitCode !== 0) throw new Error(`attach ${g}: ${r.stderr}`)
      return g
    },
    plumb,
    save: async () => normalizeSave((await shQuiet('ip', ['netns', 'exec', host, 'iptables-save'])).stdout),
    sysctl: (key) => inHost('sysctl', '-n', key),
  }
}

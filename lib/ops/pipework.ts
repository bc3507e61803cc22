// pipework: pipework's own command lines, done through plumb's operations (so each is a
// transaction with marks, undone by detach), and the plumb command line each one becomes.

import { notFound } from '../errors.js'
import { openHostHandle } from '../kernel/index.js'
import type { LinkInfo } from '../kernel/types.js'
import { parsePipework, planPipework, plumbLine } from '../parse/index.js'
import type { PipeworkCommand, PipeworkHostKind } from '../parse/index.js'
import type { CommonOptions } from './context.js'
import type { OpResult } from './result.js'
import type { ExecResult } from './exec.js'
import type { WaitResult } from './wait.js'
import { mayBeOvsDevice, ovsOwner } from './ovs-owner.js'

export interface PipeworkOptions extends CommonOptions {
  /** the words after `pipework`, as pipework took them */
  argv: string[]
  /** exec (route/rule/tc): 'inherit' (the CLI) or 'pipe' (collect output) */
  stdio?: 'inherit' | 'pipe'
}

export type PipeworkResult =
  | { kind: 'link'; command: PipeworkCommand; plumb: string; result: OpResult }
  | { kind: 'wait'; command: PipeworkCommand; plumb: string; result: WaitResult }
  | { kind: 'exec'; command: PipeworkCommand; plumb: string; result: ExecResult }

const EXEC_ARGV = { route: ['ip', 'route'], rule: ['ip', 'rule'], tc: ['tc'] } as const

export async function pipework(opts: PipeworkOptions): Promise<PipeworkResult> {
  const cmd = parsePipework(opts.argv)
  if (cmd.kind === 'wait') {
    const { waitFor } = await import('./wait.js')
    return { kind: 'wait', command: cmd, plumb: `plumb wait self ${cmd.ifname}`, result: await waitFor({ guest: 'self', ifname: cmd.ifname }) }
  }
  if (cmd.kind === 'exec') {
    const argv = [...EXEC_ARGV[cmd.tool], ...cmd.args]
    const { execIn } = await import('./exec.js')
    return { kind: 'exec', command: cmd, plumb: `plumb exec ${cmd.guest} -- ${argv.join(' ')}`, result: await execIn({ guest: cmd.guest, argv, allowHost: opts.allowHost ?? false, stdio: opts.stdio ?? 'pipe' }) }
  }
  const { name, kind } = await hostInterface(cmd.host)
  const plan = planPipework(cmd, name, kind)
  const line = plumbLine(cmd, plan)
  const ips = cmd.ip.kind === 'static' ? [cmd.ip.spec] : cmd.ip.kind === 'dhcp' ? ['dhcp'] : []
  const base = {
    ...(opts.dryRun !== undefined ? { dryRun: opts.dryRun } : {}),
    ...(opts.allowHost !== undefined ? { allowHost: opts.allowHost } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    guest: cmd.guest,
    ips,
    ifname: cmd.ifname,
    // pipework replaced the guest's default route for @GW; detach puts the old one back
    ...(cmd.ip.kind === 'static' && cmd.ip.gateway ? { replaceGateway: true } : {}),
    ...(cmd.ip.kind === 'dhcp' ? { dhcp: { ...(cmd.ip.client !== 'auto' ? { client: cmd.ip.client } : {}), ...(cmd.ip.hostname ? { hostname: cmd.ip.hostname } : {}) } } : {}),
  }
  const mac = cmd.mac ? { mac: cmd.mac.mac } : {}
  const hostIfname = cmd.hostIfname ? { hostIfname: cmd.hostIfname } : {}
  let result: OpResult
  switch (plan.op) {
    case 'attach-veth':
      result = await (await import('./attach-veth.js')).attachVeth({ ...base, ...mac, ...hostIfname, bridge: plan.bridge, ...(cmd.vlan !== undefined ? { vlan: cmd.vlan } : {}) })
      break
    case 'ovs-port':
      result = await (await import('./ovs-port.js')).ovsPort({ ...base, ...mac, ...hostIfname, bridge: plan.bridge, createBridge: plan.createBridge, ...(cmd.vlan !== undefined ? { tag: cmd.vlan } : {}) })
      break
    case 'macvlan':
      result = await (await import('./macvlan.js')).macvlan({ ...base, ...mac, parent: plan.parent, mode: 'bridge' })
      break
    case 'vlan':
      result = await (await import('./vlan.js')).vlan({ ...base, ...mac, parent: plan.parent, vid: plan.vid })
      break
    case 'move-dev':
      result = await (await import('./move-dev.js')).moveDev({ ...base, device: plan.device })
      break
  }
  result.pipework = { argv: opts.argv, plumb: line }
  return { kind: 'link', command: cmd, plumb: line, result }
}

/** The host interface a pipework command names (by name, or mac:ADDR), and what it is. */
async function hostInterface(host: { name: string } | { mac: string }): Promise<{ name: string; kind: PipeworkHostKind }> {
  const hostNs = openHostHandle()
  try {
    let link: LinkInfo | undefined
    if ('mac' in host) {
      // A bridge takes the MAC of a port: the port (the NIC) is the one meant.
      const all = (await hostNs.getLinks()).filter((l) => l.mac === host.mac)
      link = all.find((l) => l.kind !== 'bridge') ?? all[0]
      if (!link) throw notFound(`no host interface has the MAC ${host.mac} (mac:${host.mac})`, 'see the host\'s interfaces and their MACs: ip -br link')
    } else {
      link = await hostNs.getLink(host.name)
      if (!link) return { name: host.name, kind: 'missing' }
    }
    if (link.kind === 'bridge') return { name: link.name, kind: 'linux-bridge' }
    // An OVS bridge's own port is an 'openvswitch' (kernel datapath) or 'tun' (userspace) link;
    // an OVS that cannot be asked about it is exit 5, not "a NIC".
    if (mayBeOvsDevice(link) && (await ovsOwner(link.name, link)).role === 'bridge') return { name: link.name, kind: 'ovs-bridge' }
    return { name: link.name, kind: 'nic' }
  } finally {
    hostNs.close()
  }
}

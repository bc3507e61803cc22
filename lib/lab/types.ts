// A lab file after parsing and validation (LAB.md): nodes with containerlab's defaults/kinds/groups
// merged in, links classified by what their two ends are, plumb's NAT and checks. Pure data.

import type { MacvlanMode } from '../parse/index.js'

/** The node kinds plumb deploys; containerlab's others are refused (exit 5) by name. */
export type NodeKind = 'linux' | 'netns' | 'bridge' | 'ovs-bridge'

export interface NamesSpec {
  hostname?: string
  addHost: string[]
  dns: string[]
  dnsSearch: string[]
  dnsOption: string[]
}

export interface LabNode {
  name: string
  kind: NodeKind
  /** where the node is in the file: `topology.nodes.web` */
  at: string
  /** what the node is on the host: its container's name, its ip netns's name, or the bridge's name */
  runtime: string
  /** linux: a container the lab did not start (`container:`): deploy neither starts nor removes it */
  existing: boolean
  image?: string
  /** the container's command, as an argv (containerlab splits a string the way a shell would) */
  cmd?: string[]
  entrypoint?: string[]
  env: Record<string, string>
  binds: string[]
  user?: string
  labels: Record<string, string>
  /** linux: Docker's network mode: `none` (default, as containerlab's linux nodes), `host`, `bridge`, `container:NAME` */
  networkMode: string
  /** network-mode container:NODE: the node whose netns this one shares (deployed first) */
  sharesWith?: string
  /** run inside the node after its links, when deploy creates it (containerlab's `exec`) */
  exec: string[]
  /** plumb: per-netns sysctls set in the node's netns */
  sysctls: Record<string, string>
  /** plumb: as `plumb names` */
  names?: NamesSpec
  /** bridge nodes: the host's own addresses on the bridge (the lab's gateway, say) */
  ips: string[]
}

export interface LabEndpoint {
  /** a node's name, or `host` */
  node: string
  /** the interface: in the node, or (bridge and host endpoints) the host end's name */
  ifname: string
  /** IP specs, `ADDR/PREFIX[@GW]` or `dhcp` */
  ips: string[]
  /** `DST[@GW]` routes via this interface */
  routes: string[]
  mac?: string
  /** an OVS bridge endpoint: the access VLAN, or the trunk's VLANs */
  vlan?: number
  trunks?: number[]
  /** where the endpoint is in the file: `topology.links[3].endpoints[1]` */
  at: string
}

interface LinkBase {
  /** `topology.links[3]` */
  at: string
  mtu?: number
}

/** One link; `a` is always the guest side (a linux or netns node). */
export type LabLink =
  | (LinkBase & { kind: 'p2p'; a: LabEndpoint; b: LabEndpoint })
  | (LinkBase & { kind: 'host'; a: LabEndpoint; b: LabEndpoint })
  | (LinkBase & { kind: 'bridge'; a: LabEndpoint; b: LabEndpoint })
  | (LinkBase & { kind: 'ovs'; a: LabEndpoint; b: LabEndpoint })
  | (LinkBase & { kind: 'macvlan'; a: LabEndpoint; parent: string; mode: MacvlanMode })
  | (LinkBase & { kind: 'vxlan'; bridge: string; vni: number; remote: string[]; local?: string; dev?: string; dstport?: number })

export type LinkKind = LabLink['kind']

export interface ExposeSpec {
  node: string
  ports: string[]
  to?: string
  at: string
}
export interface MasqueradeSpec {
  /** a bridge node's name, or a CIDR */
  target: string
  out?: string
  at: string
}
export interface IsolateSpec {
  bridge: string
  allow: Array<[string, string]>
  at: string
}

export interface LabNat {
  expose: ExposeSpec[]
  masquerade: MasqueradeSpec[]
  isolate: IsolateSpec[]
}

/** What a reachability check aims at. */
export type ProbeTarget =
  | { kind: 'node'; node: string; ifname?: string }
  | { kind: 'address'; address: string }
  /** the host's own addresses on the lab's links */
  | { kind: 'host' }

interface CheckBase {
  name: string
  points: number
  /** `fail`: must NOT reach (reachability), or must not hold (state) */
  expect: 'ok' | 'fail'
  /** seconds: how long a reachability check retries; for `expect: fail`, its window */
  timeout?: number
  at: string
}

export type LabCheck =
  | (CheckBase & { kind: 'ping'; from: string; target: ProbeTarget })
  | (CheckBase & { kind: 'tcp'; from: string; target: ProbeTarget; port: number })
  | (CheckBase & { kind: 'has-address'; node: string; ifname?: string; cidr: string })
  | (CheckBase & { kind: 'has-route'; node: string; dst: string; via?: string; dev?: string })
  | (CheckBase & { kind: 'exec'; node: string; command: string; stdout?: string; stderr?: string; exit: number })
  | (CheckBase & { kind: 'same-netns'; node: string; other: string })

export type CheckKind = LabCheck['kind']

export interface Lab {
  name: string
  /** the file it was read from (for messages) */
  file: string
  /** the prefix rule's raw value: undefined = containerlab's default `clab` */
  prefix?: string
  nodes: LabNode[]
  links: LabLink[]
  nat: LabNat
  checks: LabCheck[]
  /** containerlab fields plumb reads but does not act on, by path */
  ignored: string[]
}

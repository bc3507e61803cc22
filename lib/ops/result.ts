// The result every op returns: shaped like a CNI result (interfaces, ips, routes) so scripts
// and graders can read it, plus whether anything changed and the plan that was (or would be) run.

export interface ResultInterface {
  name: string
  mac?: string
  mtu?: number
  /** 'host' or the guest's label ('docker:web', 'netns:blue', ...) */
  netns: string
  kind: string
  /** the other end of a veth / the parent of a macvlan or vlan */
  peer?: string
  /** the bridge (Linux or OVS) the host end is a port of */
  bridge?: string
}

export interface ResultIp {
  /** CIDR: '198.18.0.10/24' */
  address: string
  gateway?: string
  /** index into `interfaces` */
  interface: number
}

export interface ResultRoute {
  dst: string
  gw?: string
}

export interface OpResult {
  op: string
  guest: string
  /** false: everything was already so (idempotent re-run) */
  changed: boolean
  dryRun: boolean
  /** the steps as `ip` / `ovs-vsctl` lines: run (changed), or planned (dry-run) */
  plan: string[]
  interfaces: ResultInterface[]
  ips: ResultIp[]
  routes: ResultRoute[]
  /** the owner mark put on what was created */
  mark?: string
  /** short human lines: what was done or why nothing was */
  messages: string[]
  /** what the op could not find out and left alone because of it (stderr in text mode) */
  warnings?: string[]
  /** op-specific extras (a DHCP lease, a restored route, ...) */
  [extra: string]: unknown
}

export function emptyResult(op: string, guest: string, dryRun: boolean): OpResult {
  return { op, guest, changed: false, dryRun, plan: [], interfaces: [], ips: [], routes: [], messages: [] }
}

// The kernel layer's vocabulary: plain typed views of links, addresses and routes, and the
// handle interface ops program against. Only lib/kernel implements it (over `netlink`).

export type Family = 4 | 6

export interface LinkInfo {
  index: number
  name: string
  /** IFLA_INFO_KIND: 'veth', 'bridge', 'macvlan', 'vlan', 'openvswitch', ... (undefined for plain NICs/lo) */
  kind?: string
  /** slave kind, e.g. 'bridge' for a bridge port, 'openvswitch' for an OVS port */
  slaveKind?: string
  mac?: string // 'aa:bb:cc:dd:ee:ff'
  mtu: number
  /** administratively up (IFF_UP) */
  up: boolean
  /** operstate string: 'UP', 'DOWN', 'UNKNOWN', 'LOWERLAYERDOWN', ... */
  operState: string
  /** the hardware type (ifi_type) as `ip link` names it: 'ether', 'loopback', 'none' (a tun), ... */
  linkType?: string
  /** ifindex of the master (bridge), if enslaved */
  master?: number
  /** IFLA_IFALIAS: plumb's owner mark lives here ('plumb:...') */
  alias?: string
  /** IFLA_LINK: veth peer ifindex / macvlan-vlan parent ifindex (may be in another netns) */
  link?: number
  /** IFLA_LINK_NETNSID: set when `link` lives in another netns */
  linkNetnsId?: number
  /** macvlan mode, when kind === 'macvlan' */
  macvlanMode?: 'private' | 'vepa' | 'bridge' | 'passthru' | 'source'
  /** 802.1q id, when kind === 'vlan' */
  vlanId?: number
  /** kind === 'vxlan': its VNI, UDP port, local address, underlay ifindex and whether it learns */
  vxlan?: VxlanInfo
  /** a bridge port's IFLA_BRPORT_ISOLATED (when slaveKind === 'bridge') */
  isolated?: boolean
}

export interface VxlanInfo {
  vni: number
  /** destination UDP port (the kernel's default is 8472, IANA's 4789) */
  port: number
  local?: string
  /** IFLA_VXLAN_LINK: the underlay device's ifindex */
  dev?: number
  learning: boolean
}

export interface CreateVxlanSpec {
  name: string
  vni: number
  port: number
  /** the underlay device's ifindex (the kernel then sizes the MTU to it) */
  dev?: number
  local?: string
  mtu?: number
  master?: number
  up?: boolean
}

/** A bridge forwarding entry of a VXLAN device: `bridge fdb append MAC dev VX dst REMOTE`. */
export interface FdbEntry {
  mac: string
  dst?: string
  permanent: boolean
}

export interface AddrInfo {
  index: number
  family: Family
  address: string // canonical text, no prefix
  prefix: number
  /** seconds; undefined or 0xffffffff = forever */
  validLft?: number
  preferredLft?: number
  /** IFA_F_PERMANENT etc. */
  permanent: boolean
}

export interface RouteInfo {
  family: Family
  /** 'default' or canonical CIDR ('198.18.0.0/24', '2001:db8::/64') */
  dst: string
  gateway?: string
  oif?: number
  table: number
  /** 'universe' | 'link' | 'host' | ... */
  scope: string
  /** 'kernel' | 'boot' | 'static' | ... */
  protocol: string
  onlink: boolean
  metric?: number
}

export interface VethPeerSpec {
  name: string
  /** fd of the netns the peer is born in; omitted = same netns as the host end */
  nsFd?: number
  mac?: string
  mtu?: number
  alias?: string
}

export interface CreateVethSpec {
  name: string
  /** fd of the netns the first end is born in; omitted = the handle's own netns */
  nsFd?: number
  mtu?: number
  mac?: string
  master?: number
  up?: boolean
  alias?: string
  peer: VethPeerSpec
}

export interface CreateChildSpec {
  /** name the child is born with, in the target netns */
  name: string
  /** parent ifindex in the handle's netns */
  parent: number
  nsFd?: number
  mtu?: number
  mac?: string
  alias?: string
}

export interface LinkChange {
  up?: boolean
  mtu?: number
  mac?: string
  alias?: string
  /** ifindex of the new master, or 0 to release */
  master?: number
  name?: string
  /** move to the netns of this fd */
  nsFd?: number
  /** net.ipv4.conf.<if>.arp_notify, set over netlink (IFLA_AF_SPEC) instead of /proc/sys */
  arpNotify?: boolean
}

export interface AddrOptions {
  /** CREATE|REPLACE instead of CREATE|EXCL */
  replace?: boolean
  validLft?: number
  preferredLft?: number
  /** IFA_F_NODAD for IPv6 statics: usable at once, as with `ip addr add ... nodad` */
  nodad?: boolean
}

export interface RouteSpec {
  family: Family
  dst: string // 'default' or CIDR
  gateway?: string
  oif?: number
  /** 'link' for an on-link host route to an off-subnet gateway */
  scope?: 'universe' | 'link' | 'host'
  onlink?: boolean
  metric?: number
  table?: number
}

/** A netlink handle bound to one netns for its whole life (Go's netlink.NewHandleAt). */
export interface NetHandle {
  /** human label for messages: 'host' or the guest's description */
  readonly label: string

  /** all links, or with `master` only the ports of that bridge */
  getLinks(filter?: { master?: number }): Promise<LinkInfo[]>
  /** the ports of bridge #master as getLinks({ master }) reads them, kept current by a link watch after the first read (shared objects: do not change them) */
  portsOf(master: number): LinkInfo[] | Promise<LinkInfo[]>
  /** undefined when absent */
  getLink(name: string): Promise<LinkInfo | undefined>
  getLinkByIndex(index: number): Promise<LinkInfo | undefined>

  /** One RTM_NEWLINK: both ends born where they belong (ip link add NAME type veth peer name P netns X) */
  createVeth(spec: CreateVethSpec): Promise<{ index: number; peerIndex: number }>
  createBridge(spec: { name: string; up?: boolean; alias?: string; mtu?: number }): Promise<{ index: number }>
  createMacvlan(spec: CreateChildSpec & { mode: NonNullable<LinkInfo['macvlanMode']> }): Promise<void>
  createVlan(spec: CreateChildSpec & { vid: number }): Promise<void>
  /** `ip link add NAME type vxlan id VNI dstport P [dev D] [local L] nolearning [master B] [up]` */
  createVxlan(spec: CreateVxlanSpec): Promise<{ index: number }>
  /** `bridge fdb show dev #INDEX` (the device's own entries) */
  getFdb(index: number): Promise<FdbEntry[]>
  /** the id this netns gives the netns of `nsFd` (a veth peer's linkNetnsId), undefined when none */
  nsIdOf(nsFd: number): Promise<number | undefined>
  /** `bridge fdb append MAC dev #INDEX dst DST` (permanent) */
  appendFdb(index: number, mac: string, dst: string): Promise<void>
  /** `bridge fdb del MAC dev #INDEX dst DST` */
  delFdb(index: number, mac: string, dst: string): Promise<void>
  /** `ip route get DST`: the output interface (and gateway) the kernel would use */
  routeGet(dst: string): Promise<{ oif?: number; gateway?: string; prefsrc?: string }>
  setLink(index: number, change: LinkChange): Promise<void>
  /** `ip link set #INDEX type bridge_slave isolated on|off` */
  setPortIsolated(index: number, isolated: boolean): Promise<void>
  delLink(index: number): Promise<void>

  /** `netnsId`: the addresses of the netns with that id as seen from this one (a veth peer's IFLA_LINK_NETNSID) */
  getAddrs(filter?: { index?: number; family?: Family; netnsId?: number }): Promise<AddrInfo[]>
  /** each link's addresses of one family (here, or in the peer netns `netnsId`), kept current by an address watch after the first read */
  addressesOf(links: Array<{ index: number; family: Family; netnsId?: number }>): Array<ReadonlySet<string> | Promise<ReadonlySet<string>>>
  addAddr(index: number, cidr: string, opts?: AddrOptions): Promise<void>
  delAddr(index: number, cidr: string): Promise<void>

  getRoutes(filter?: { family?: Family; table?: number }): Promise<RouteInfo[]>
  addRoute(route: RouteSpec, opts?: { replace?: boolean }): Promise<void>
  delRoute(route: RouteSpec): Promise<void>

  /** `ethtool -K NAME tx on|off` in this handle's netns (no ethtool binary), checked by a read-back */
  setTxChecksum(name: string, on: boolean): Promise<void>
  /** `ip -4 neigh flush dev #INDEX` (learned entries only); how many went */
  flushNeighbors(index: number): Promise<number>

  /** write /proc/sys/net/... as seen from this netns (e.g. 'ipv4/conf/eth1/arp_notify') */
  setSysctl(path: string, value: string): Promise<void>
  getSysctl(path: string): Promise<string | undefined>

  close(): void
}

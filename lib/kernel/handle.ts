// NetHandle over the `netlink` package: one rtnetlink socket bound to one netns for life,
// with our own request path (errno + extended ack, a timeout on everything).

import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { AttrStream, Flags, FlagsGet, FlagsNew, ifla, rt } from './netlink.js'
import type { StreamData } from './netlink.js'
import { PlumbError, usageError } from '../errors.js'
import { NetlinkError, errnoOf, isMissingKind, toPlumbError } from './errors.js'
import type { ToPlumbErrorOptions } from './errors.js'
import { AddrCache } from './addr-cache.js'
import type { AddrWatch } from './watched-cache.js'
import { PortCache } from './port-cache.js'
import { loadAddon } from './native.js'
import { RtSocket } from './socket.js'
import type { RawMsg } from './socket.js'
import { MACVLAN_MODE_BITS, RT_TABLE_MAIN, RTNH_F_ONLINK, SCOPE_VALUES, afOf, formatIp, formatMac, linkFromWire, parseCidr, parseDst, parseIp, parseMac, addrFromWire, toRouteInfo } from './parse.js'
import type {
  AddrInfo,
  AddrOptions,
  CreateChildSpec,
  CreateVxlanSpec,
  FdbEntry,
  CreateVethSpec,
  Family,
  LinkChange,
  LinkInfo,
  NetHandle,
  RouteInfo,
  RouteSpec,
} from './types.js'

const T = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
  NEWNSID: 88,
  GETNSID: 90,
} as const
/** PF_BRIDGE: the neighbour family of bridge (and VXLAN) forwarding entries */
const AF_BRIDGE = 7
/** netns id attributes (linux/net_namespace.h) */
const NETNSA_NSID = 1
const NETNSA_FD = 3

const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, `RTM_${k}`]))
/** IFLA_EXT_MASK: no per-link statistics in replies (most of a link message's bytes) */
const EXT_MASK_SKIP_STATS = u32buf(1 << 3)
/** A veth end's queues (see createVeth): one each way, its real count either way. */
export const ONE_QUEUE = { numTxQueues: 1, numRxQueues: 1 } as const
const RTPROT_BOOT = 3
const RTN_UNICAST = 1
const RT_SCOPE_NOWHERE = 255
const FOREVER = 0xffffffff

const AF_INET = 2
const IFLA_INET_CONF = 1
/** IPV4_DEVCONF_ARP_NOTIFY in linux/ip.h (1-based, as IFLA_INET_CONF wants it) */
const IPV4_DEVCONF_ARP_NOTIFY = 22

/** IFLA_AF_SPEC's AF_INET payload setting one IPv4 devconf value: the sysctl without a /proc
 *  open in the netns (~0.2 ms, a setns and a sysctl path walk) and in the same batch of messages. */
function inetConf(key: number, value: number): Buffer {
  const b = Buffer.alloc(12)
  b.writeUInt16LE(12, 0) // IFLA_INET_CONF: header + one u32 attribute
  b.writeUInt16LE(IFLA_INET_CONF | 0x8000, 2) // NLA_F_NESTED
  b.writeUInt16LE(8, 4)
  b.writeUInt16LE(key, 6)
  b.writeUInt32LE(value >>> 0, 8)
  return b
}

function s32buf(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32LE(n, 0)
  return b
}

function u32buf(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0, 0)
  return b
}

/** An AttrStream's output as one Buffer (nested attributes are raw Buffers in the package). */
function flat(sd: StreamData): Buffer {
  const s = new AttrStream()
  s.emit(sd)
  return Buffer.concat(s.bufs)
}

/** What a link lookup answers undefined for: no such link (ENODEV); by name, also a name too long to exist (ERANGE). */
const ABSENT = [19] as const
const ABSENT_BY_NAME = [19, 34] as const

const linksOf = (msgs: RawMsg[]): LinkInfo[] => msgs.filter((m) => m.type === T.NEWLINK).map((m) => linkFromWire(m.data))

export class NetlinkHandle implements NetHandle {
  readonly label: string
  private readonly sock: RtSocket
  /** our own fd of this handle's netns (guest handles), for sysctl and helper handles */
  private readonly nsFd: number | undefined
  private closed = false
  /** the addresses of links here and in peer netns, kept current by an address watch (addressesOf) */
  private addrCache: AddrCache | undefined
  /** the ports of bridges here, kept current by a link watch (portsOf) */
  private portCache: PortCache | undefined

  private constructor(label: string, sock: RtSocket, nsFd: number | undefined) {
    this.label = label
    this.sock = sock
    this.nsFd = nsFd
  }

  /** A handle in the process's own netns. */
  static host(label = 'host'): NetlinkHandle {
    return new NetlinkHandle(label, new RtSocket(), undefined)
  }

  /** A handle whose socket is created inside the netns of `nsFd` (via the setns addon). */
  static inside(nsFd: number, label: string): NetlinkHandle {
    const addon = loadAddon()
    let made: { socket: RtSocket; nsFd: number }
    try {
      made = addon.withNetns(nsFd, () => {
        const own = openSync('/proc/thread-self/ns/net', 'r')
        try {
          return { socket: new RtSocket(), nsFd: own }
        } catch (err) {
          closeSync(own)
          throw err
        }
      })
    } catch (err) {
      throw toPlumbError(err, `open a netlink socket in the netns of ${label}`, {
        overrides: { EINVAL: 'USAGE', EBADF: 'USAGE' },
        hint: 'the fd must be an open network namespace (/proc/PID/ns/net, /run/netns/NAME)',
      })
    }
    return new NetlinkHandle(label, made.socket, made.nsFd)
  }

  // ---- the request path -------------------------------------------------------------------

  /** Send one request and return the parsed replies; a kernel NLMSGERR becomes NetlinkError
   *  with errno and extack (see socket.ts for why the package's request() is not used). */
  private async request(type: number, msg: rt.Message, flags: number, kind?: string): Promise<rt.Message[]> {
    const replies = await this.requestRaw(type, msg, flags, kind)
    return replies.map((m) => rt.parseMessage(m.type, m.data))
  }

  /** request() without the package's parse of the replies; with `absent`, undefined for those errnos (RtSocket.request) */
  private async requestRaw(type: number, msg: rt.Message, flags: number, kind?: string): Promise<RawMsg[]>
  private async requestRaw(type: number, msg: rt.Message, flags: number, kind: string | undefined, absent: readonly number[]): Promise<RawMsg[] | undefined>
  private async requestRaw(type: number, msg: rt.Message, flags: number, kind?: string, absent?: readonly number[]): Promise<RawMsg[] | undefined> {
    if (this.closed) throw new PlumbError('FAILED', `the netlink handle of ${this.label} is closed`)
    const out = new AttrStream()
    formatMessage(msg, out)
    const opts = { op: OP_NAMES[type] ?? `message ${type}`, ...(kind ? { kind } : {}) }
    return absent ? this.sock.request(type, out.bufs, flags, { ...opts, absent }) : this.sock.request(type, out.bufs, flags, opts)
  }

  /** A request answered by link messages, read with linkFromWire (see parse.ts for why). */
  private async reqLinks(what: string, type: number, msg: rt.Message, flags: number, opts: ToPlumbErrorOptions & { kind?: string } = {}): Promise<LinkInfo[]> {
    return linksOf(await this.reqRaw(what, type, msg, flags, opts))
  }

  /** requestRaw() with the error as a PlumbError saying what failed: for replies read directly (linkFromWire, addrFromWire). */
  private async reqRaw(what: string, type: number, msg: rt.Message, flags: number, opts: ToPlumbErrorOptions & { kind?: string } = {}): Promise<RawMsg[]> {
    try {
      return await this.requestRaw(type, msg, flags, opts.kind)
    } catch (err) {
      throw toPlumbError(err, what, opts)
    }
  }

  /** reqRaw() with the replies parsed by the package */
  private async req(what: string, type: number, msg: rt.Message, flags: number, opts: ToPlumbErrorOptions & { kind?: string } = {}): Promise<rt.Message[]> {
    return (await this.reqRaw(what, type, msg, flags, opts)).map((m) => rt.parseMessage(m.type, m.data))
  }

  private where(): string {
    return this.label === 'host' ? '' : ` in ${this.label}`
  }

  // ---- links --------------------------------------------------------------------------------

  async getLinks(filter: { master?: number } = {}): Promise<LinkInfo[]> {
    // IFLA_MASTER on a dump (`ip link show master BR`): with NETLINK_GET_STRICT_CHK the kernel
    // sends only the bridge's ports; filtered again here for a socket without it.
    const attrs: rt.LinkMessage['attrs'] = { extMask: EXT_MASK_SKIP_STATS, ...(filter.master !== undefined ? { master: filter.master } : {}) }
    const links = await this.reqLinks(`list links${filter.master !== undefined ? ` of master #${filter.master}` : ''}${this.where()}`, T.GETLINK, { kind: 'link', data: {}, attrs }, FlagsGet.DUMP)
    return filter.master === undefined ? links : links.filter((l) => l.master === filter.master)
  }

  /** RTM_GETLINK by IFLA_IFNAME: one small reply instead of a dump */
  async getLink(name: string): Promise<LinkInfo | undefined> {
    return this.getOne(`look up link "${name}"${this.where()}`, {}, { ifname: name, extMask: EXT_MASK_SKIP_STATS })
  }

  async getLinkByIndex(index: number): Promise<LinkInfo | undefined> {
    return this.getOne(`look up link #${index}${this.where()}`, { index }, { extMask: EXT_MASK_SKIP_STATS })
  }

  private async getOne(what: string, data: rt.LinkMessage['data'], attrs: rt.LinkMessage['attrs']): Promise<LinkInfo | undefined> {
    try {
      // a name that cannot exist (> 15 bytes) is absent too
      const replies = await this.requestRaw(T.GETLINK, { kind: 'link', data, attrs }, 0, undefined, attrs.ifname !== undefined ? ABSENT_BY_NAME : ABSENT)
      return replies && linksOf(replies)[0]
    } catch (err) {
      throw toPlumbError(err, what)
    }
  }

  /** RTM_NEWLINK with CREATE|EXCL|ECHO: the echo is the new link, whose IFLA_LINK is the veth
   *  peer's index, so no lookup is needed. Undefined when the kernel echoed nothing here (the
   *  link was born in another netns: the echo goes to that netns's sockets). */
  private async newLink(what: string, kind: string, data: rt.LinkMessage['data'], attrs: rt.LinkMessage['attrs']): Promise<LinkInfo | undefined> {
    const [link] = await this.reqLinks(what, T.NEWLINK, { kind: 'link', data, attrs }, FlagsNew.CREATE | FlagsNew.EXCL | Flags.ECHO, { kind })
    return link
  }

  /** Run fn with a handle that sees the netns of `nsFd` (this one when nsFd is undefined). */
  private async withHandleIn<T>(nsFd: number | undefined, fn: (h: NetHandle) => Promise<T>): Promise<T> {
    if (nsFd === undefined) return fn(this)
    const h = NetlinkHandle.inside(nsFd, `${this.label} (netns fd ${nsFd})`)
    try {
      return await fn(h)
    } finally {
      h.close()
    }
  }

  /** `ip link add NAME [netns A] mtu M numtxqueues 1 numrxqueues 1 address X master B up type veth peer name P netns G mtu M numtxqueues 1 numrxqueues 1 address Y`
   *  in ONE message: the peer is born in its netns with its final name (a netns move costs ~22 ms,
   *  creating in place ~1.6 ms). The kernel ignores IFLA_IFALIAS on create, and a veth peer cannot
   *  be created up (ENOTCONN): aliases are set right after (pipelined), the caller brings the peer up.
   *  Both ends are born with one queue each way (`numtxqueues 1 numrxqueues 1`): a veth is
   *  otherwise allocated one per possible CPU and cut to one real queue inside the create, and the
   *  cut waits for an expedited RCU grace period per end, about half of the create's time
   *  (measured: 0.58 -> 0.29-0.36 ms a veth). Traffic is the same (one real queue either way);
   *  only `ethtool -L` can no longer add channels to a plumb veth. */
  async createVeth(spec: CreateVethSpec): Promise<{ index: number; peerIndex: number }> {
    const what = `create veth "${spec.name}" (peer "${spec.peer.name}")${this.where()}`
    const peerAttrs: rt.LinkMessage['attrs'] = { ifname: spec.peer.name, ...ONE_QUEUE }
    if (spec.peer.nsFd !== undefined) peerAttrs.netNsFd = spec.peer.nsFd
    if (spec.peer.mtu !== undefined) peerAttrs.mtu = spec.peer.mtu
    if (spec.peer.mac !== undefined) peerAttrs.address = macOrUsage(spec.peer.mac)
    const peer = Buffer.concat([rt.formatLink({}), flat(ifla.formatLinkAttrs(peerAttrs))])
    const attrs: rt.LinkMessage['attrs'] = {
      ifname: spec.name,
      ...ONE_QUEUE,
      linkinfo: flat(ifla.formatInfo({ kind: 'veth', data: flat(ifla.formatVethInfo({ peer })) })),
    }
    if (spec.nsFd !== undefined) attrs.netNsFd = spec.nsFd
    if (spec.mtu !== undefined) attrs.mtu = spec.mtu
    if (spec.mac !== undefined) attrs.address = macOrUsage(spec.mac)
    if (spec.master !== undefined) attrs.master = spec.master
    const echoed = await this.newLink(what, 'veth', upData(spec.up), attrs)

    // from here on the veth exists: any failure deletes it again, so the create stays all-or-nothing
    let index = echoed?.index
    let peerIndex = echoed?.link
    // A peer born in another netns has no address yet: a segment check's address cache knows it
    // without reading it (the n-th attach to a bridge then reads none of the guests before it).
    if (peerIndex !== undefined && echoed?.linkNetnsId !== undefined && spec.nsFd === undefined) this.addrCache?.fresh(echoed.linkNetnsId, peerIndex)
    try {
      // A short-lived socket in the other netns only when there is something to do there: a
      // caller that holds a handle in the guest sets the peer's alias itself (one socket less).
      await Promise.all([
        index !== undefined && spec.alias === undefined
          ? undefined
          : this.withHandleIn(spec.nsFd, async (h) => {
              if (index === undefined) index = (await mustGet(h, spec.name)).index
              if (spec.alias !== undefined) await h.setLink(index, { alias: spec.alias })
            }),
        // no echo here (end one was born in another netns): the peer is looked up where it is
        peerIndex !== undefined && spec.peer.alias === undefined
          ? undefined
          : this.withHandleIn(spec.peer.nsFd, async (h) => {
              if (peerIndex === undefined) peerIndex = (await mustGet(h, spec.peer.name)).index
              if (spec.peer.alias !== undefined) await h.setLink(peerIndex, { alias: spec.peer.alias })
            }),
      ])
    } catch (err) {
      await this.withHandleIn(spec.nsFd, async (h) => {
        const l = index !== undefined ? { index } : await h.getLink(spec.name)
        if (l) await h.delLink(l.index)
      }).catch(() => {})
      throw err
    }
    return { index: index!, peerIndex: peerIndex! }
  }

  /** `ip link add NAME mtu M up type bridge` (+ alias) */
  async createBridge(spec: { name: string; up?: boolean; alias?: string; mtu?: number }): Promise<{ index: number }> {
    const attrs: rt.LinkMessage['attrs'] = { ifname: spec.name, linkinfo: flat(ifla.formatInfo({ kind: 'bridge' })) }
    if (spec.mtu !== undefined) attrs.mtu = spec.mtu
    const echoed = await this.newLink(`create bridge "${spec.name}"${this.where()}`, 'bridge', upData(spec.up), attrs)
    const index = echoed?.index ?? (await mustGet(this, spec.name)).index
    if (spec.alias !== undefined) await this.undoOnFail(index, () => this.setLink(index, { alias: spec.alias! }))
    return { index }
  }

  /** `ip link add NAME link PARENT netns G mtu M address X type macvlan mode MODE` */
  async createMacvlan(spec: CreateChildSpec & { mode: NonNullable<LinkInfo['macvlanMode']> }): Promise<void> {
    const data = flat(ifla.formatMacvlan({ mode: MACVLAN_MODE_BITS[spec.mode] }))
    await this.createChild(`create macvlan "${spec.name}" on #${spec.parent}${this.where()}`, 'macvlan', data, spec)
  }

  /** `ip link add NAME link PARENT netns G type vlan id VID` (needs 8021q in the kernel) */
  async createVlan(spec: CreateChildSpec & { vid: number }): Promise<void> {
    const data = flat(ifla.formatVlan({ id: spec.vid }))
    await this.createChild(`create vlan "${spec.name}" (id ${spec.vid}) on #${spec.parent}${this.where()}`, 'vlan', data, spec)
  }

  /** `ip link add NAME [mtu M] [master B] [up] type vxlan id VNI dstport P [dev D] [local L] nolearning`:
   *  learning off, as the flood entries (appendFdb) say where every remote is. */
  async createVxlan(spec: CreateVxlanSpec): Promise<{ index: number }> {
    const vx: Parameters<typeof ifla.formatVxlan>[0] = { id: spec.vni, port: u16be(spec.port), learning: 0 }
    if (spec.dev !== undefined) vx.link = spec.dev
    if (spec.local !== undefined) {
      const l = parseIp(spec.local)
      if (l.family === 4) vx.local = l.bytes
      else vx.local6 = l.bytes
    }
    const attrs: rt.LinkMessage['attrs'] = { ifname: spec.name, linkinfo: flat(ifla.formatInfo({ kind: 'vxlan', data: flat(ifla.formatVxlan(vx)) })) }
    if (spec.mtu !== undefined) attrs.mtu = spec.mtu
    if (spec.master !== undefined) attrs.master = spec.master
    const echoed = await this.newLink(`create vxlan "${spec.name}" (vni ${spec.vni})${this.where()}`, 'vxlan', upData(spec.up), attrs)
    return { index: echoed?.index ?? (await mustGet(this, spec.name)).index }
  }

  async getFdb(index: number): Promise<FdbEntry[]> {
    const msgs = await this.req(`list forwarding entries of link #${index}${this.where()}`, T.GETNEIGH, { kind: 'neighbor', data: { family: AF_BRIDGE, ifindex: index }, attrs: {} }, FlagsGet.DUMP)
    const out: FdbEntry[] = []
    for (const m of msgs) {
      if (m.kind !== 'neighbor' || m.data.ifindex !== index || !m.attrs.lladdr) continue
      out.push({ mac: formatMac(m.attrs.lladdr), ...(m.attrs.dst ? { dst: formatIp(m.attrs.dst) } : {}), permanent: m.data.state?.permanent === true })
    }
    return out
  }

  /** The id this netns gives the netns of `nsFd` (RTM_GETNSID: what a veth peer there shows as
   *  IFLA_LINK_NETNSID here), or undefined when it has given it none (asking assigns none). */
  async nsIdOf(nsFd: number): Promise<number | undefined> {
    const what = `look up the netns id of fd ${nsFd}${this.where()}`
    if (this.closed) throw new PlumbError('FAILED', `the netlink handle of ${this.label} is closed`)
    // struct rtgenmsg (AF_UNSPEC, padded to 4), then NETNSA_FD
    const req = Buffer.alloc(12)
    req.writeUInt16LE(8, 4)
    req.writeUInt16LE(NETNSA_FD, 6)
    req.writeUInt32LE(nsFd, 8)
    let replies: RawMsg[]
    try {
      replies = await this.sock.request(T.GETNSID, [req], 0, { op: OP_NAMES[T.GETNSID]! })
    } catch (err) {
      throw toPlumbError(err, what)
    }
    const m = replies.find((r) => r.type === T.NEWNSID)
    for (let off = 4; m && off + 8 <= m.data.length; ) {
      const len = m.data.readUInt16LE(off)
      if (len < 4) break
      if ((m.data.readUInt16LE(off + 2) & 0x3fff) === NETNSA_NSID) {
        const id = m.data.readInt32LE(off + 4)
        return id < 0 ? undefined : id
      }
      off += (len + 3) & ~3
    }
    return undefined
  }

  async appendFdb(index: number, mac: string, dst: string): Promise<void> {
    const what = `append forwarding entry ${mac} dst ${dst} to link #${index}${this.where()}`
    await this.req(what, T.NEWNEIGH, fdbMessage(index, mac, dst, what), FlagsNew.CREATE | FlagsNew.APPEND)
  }

  async delFdb(index: number, mac: string, dst: string): Promise<void> {
    const what = `delete forwarding entry ${mac} dst ${dst} from link #${index}${this.where()}`
    await this.req(what, T.DELNEIGH, fdbMessage(index, mac, dst, what), 0, { overrides: { ENOENT: 'NOT_FOUND' } })
  }

  async routeGet(dst: string): Promise<{ oif?: number; gateway?: string; prefsrc?: string }> {
    const what = `look up the route to ${dst}${this.where()}`
    let ip: ReturnType<typeof parseIp>
    try {
      ip = parseIp(dst)
    } catch (err) {
      throw usageError(`failed to ${what}: ${(err as Error).message}`)
    }
    const [m] = await this.req(what, T.GETROUTE, { kind: 'route', data: { family: afOf(ip.family), dstLen: ip.family === 4 ? 32 : 128 }, attrs: { dst: ip.bytes } }, 0, {
      overrides: { ENETUNREACH: 'NOT_FOUND', EHOSTUNREACH: 'NOT_FOUND' },
    })
    if (!m || m.kind !== 'route') return {}
    return {
      ...(m.attrs.oif !== undefined ? { oif: m.attrs.oif } : {}),
      ...(m.attrs.gateway ? { gateway: formatIp(m.attrs.gateway) } : {}),
      ...(m.attrs.prefsrc ? { prefsrc: formatIp(m.attrs.prefsrc) } : {}),
    }
  }

  private async createChild(what: string, kind: string, data: Buffer, spec: CreateChildSpec): Promise<void> {
    const attrs: rt.LinkMessage['attrs'] = { ifname: spec.name, link: u32buf(spec.parent), linkinfo: flat(ifla.formatInfo({ kind, data })) }
    if (spec.nsFd !== undefined) attrs.netNsFd = spec.nsFd
    if (spec.mtu !== undefined) attrs.mtu = spec.mtu
    if (spec.mac !== undefined) attrs.address = macOrUsage(spec.mac)
    const echoed = await this.newLink(what, kind, {}, attrs)
    if (spec.alias === undefined) return
    await this.withHandleIn(spec.nsFd, async (h) => {
      const index = echoed?.index ?? (await mustGet(h, spec.name)).index
      try {
        await h.setLink(index, { alias: spec.alias! })
      } catch (err) {
        await h.delLink(index).catch(() => {})
        throw err
      }
    })
  }

  private async undoOnFail(index: number, fn: () => Promise<void>): Promise<void> {
    try {
      await fn()
    } catch (err) {
      await this.delLink(index).catch(() => {})
      throw err
    }
  }

  /** `ip link set #INDEX [netns G] [name N] [mtu M] [address X] [alias A] [master B|nomaster] [up|down]`
   *  in one RTM_SETLINK. Not atomic in the kernel: the MAC may change although the MTU is
   *  rejected (snapshot first if you need to roll back). The netns move happens first, so a
   *  rename and the rest apply in the target netns. */
  async setLink(index: number, change: LinkChange): Promise<void> {
    const attrs: rt.LinkMessage['attrs'] = {}
    if (change.name !== undefined) attrs.ifname = change.name
    if (change.mtu !== undefined) attrs.mtu = change.mtu
    if (change.mac !== undefined) attrs.address = macOrUsage(change.mac)
    if (change.alias !== undefined) attrs.ifalias = change.alias
    if (change.master !== undefined) attrs.master = change.master
    if (change.nsFd !== undefined) attrs.netNsFd = change.nsFd
    if (change.arpNotify !== undefined) attrs.afSpec = new Map([[AF_INET, inetConf(IPV4_DEVCONF_ARP_NOTIFY, change.arpNotify ? 1 : 0)]])
    const data: rt.LinkMessage['data'] = { index, ...(change.up === undefined ? {} : upData(change.up)) }
    const parts = Object.keys(change).filter((k) => (change as Record<string, unknown>)[k] !== undefined)
    await this.req(`set ${parts.join(', ') || 'nothing'} on link #${index}${this.where()}`, T.SETLINK, { kind: 'link', data, attrs }, 0)
  }

  /** `ip link set #INDEX type bridge_slave isolated on|off` (IFLA_BRPORT_ISOLATED): an isolated
   *  port forwards only to ports that are not. RTM_NEWLINK on the existing link, as ip sends it:
   *  RTM_SETLINK ignores a port's IFLA_INFO_SLAVE_DATA. */
  async setPortIsolated(index: number, isolated: boolean): Promise<void> {
    const slaveData = flat(ifla.formatBridgePort({ isolated: Buffer.from([isolated ? 1 : 0]) }))
    const linkinfo = flat(ifla.formatInfo({ slaveKind: 'bridge', slaveData }))
    await this.req(`set bridge port #${index} isolated ${isolated ? 'on' : 'off'}${this.where()}`, T.NEWLINK, { kind: 'link', data: { index }, attrs: { linkinfo } }, 0)
  }

  /** `ip link del #INDEX` */
  async delLink(index: number): Promise<void> {
    await this.req(`delete link #${index}${this.where()}`, T.DELLINK, { kind: 'link', data: { index }, attrs: {} }, 0)
  }

  /**
   * `ethtool -K NAME tx on|off`, with no ethtool binary: SIOCETHTOOL on this handle's own socket
   * (a device ioctl acts in the socket's netns, so a guest's interface needs no setns), then the
   * kernel's state read back. Synchronous in effect: done before the returned promise settles.
   */
  async setTxChecksum(name: string, on: boolean): Promise<void> {
    const what = `turn ${on ? 'on' : 'off'} TX checksum offload on "${name}"${this.where()}`
    let kept: boolean
    try {
      kept = loadAddon().txChecksum(this.sock.fd, name, on)
    } catch (err) {
      throw toPlumbError(err, what, { overrides: { EOPNOTSUPP: 'UNSUPPORTED' } })
    }
    if (kept !== on) throw new PlumbError('FAILED', `failed to ${what}: the kernel kept it ${kept ? 'on' : 'off'}`)
  }

  // ---- addresses ----------------------------------------------------------------------------

  async getAddrs(filter: { index?: number; family?: Family; netnsId?: number } = {}): Promise<AddrInfo[]> {
    // with NETLINK_GET_STRICT_CHK the kernel filters by family and index; filter again in case
    const data: rt.AddressMessage['data'] = { family: filter.family ? afOf(filter.family) : 0, ...(filter.index ? { index: filter.index } : {}) }
    // IFA_TARGET_NETNSID: a dump of another netns's addresses, read-only (a write with it goes to
    // the caller's own netns: KERNEL-NOTES). Checked here: answered for the peer netns of a veth.
    const attrs: rt.AddressMessage['attrs'] = filter.netnsId !== undefined ? { targetNetnsid: s32buf(filter.netnsId) } : {}
    const where = filter.netnsId !== undefined ? ` in netns id ${filter.netnsId}${this.label === 'host' ? '' : ` of ${this.label}`}` : this.where()
    const msgs = await this.reqRaw(`list addresses${where}`, T.GETADDR, { kind: 'address', data, attrs }, FlagsGet.DUMP)
    const out: AddrInfo[] = []
    for (const m of msgs) {
      if (m.type !== T.NEWADDR) continue
      const a = addrFromWire(m.data)
      if (!a || (filter.index && a.index !== filter.index) || (filter.family && a.family !== filter.family)) continue
      out.push(a)
    }
    return out
  }

  /**
   * The addresses of each link asked for (one family each, here or, with netnsId, in a peer
   * netns), as sets of texts shared with later calls (do not change them): a dump the first time
   * a link is asked for, then what the handle's address watch heard since
   * (lib/kernel/addr-cache.ts). For lookups repeated across many links and calls (a bridge's
   * segment); getAddrs reads the kernel every time. A link whose read fails rejects its own
   * promise only.
   */
  addressesOf(links: Array<{ index: number; family: Family; netnsId?: number }>): Array<ReadonlySet<string> | Promise<ReadonlySet<string>>> {
    this.addrCache ??= new AddrCache(this.openWatch('address'), formatIp)
    return this.addrCache.lookup(
      links.map((l) => [l.netnsId ?? -1, l.index, l.family]),
      async (netnsId, index, family) => (await this.getAddrs({ index, family, ...(netnsId === -1 ? {} : { netnsId }) })).map((a) => a.address),
    )
  }

  portsOf(master: number): LinkInfo[] | Promise<LinkInfo[]> {
    this.portCache ??= new PortCache(this.openWatch('link'), linkFromWire)
    return this.portCache.ports(master, () => this.getLinks({ master }))
  }

  /** A watch socket of this handle's netns (the setns addon's), or one that trusts nothing heard (every lookup then reads). */
  private openWatch(kind: 'address' | 'link'): AddrWatch {
    const addon = loadAddon()
    const open = kind === 'address' ? () => addon.addrWatchOpen() : () => addon.linkWatchOpen()
    let fd: number | undefined
    try {
      fd = this.nsFd === undefined ? open() : addon.withNetns(this.nsFd, open)
    } catch {
      // a kernel or a sandbox that refuses the watch (NETLINK_LISTEN_ALL_NSID, CAP_NET_BROADCAST):
      // a cache that hears nothing it can trust forgets at every lookup, so every lookup reads
    }
    if (fd === undefined) return { drain: () => ({ reset: true, events: [] }), close: () => {} }
    const watch = fd
    return { drain: () => addon.addrWatchDrain(watch), close: () => closeSync(watch) }
  }

  /** `ip addr add CIDR dev #INDEX [valid_lft V preferred_lft P] [nodad]` (`replace` with opts.replace) */
  async addAddr(index: number, cidr: string, opts: AddrOptions = {}): Promise<void> {
    const what = `${opts.replace ? 'replace' : 'add'} address ${cidr} on link #${index}${this.where()}`
    const a = cidrOrUsage(cidr, what)
    const attrs: rt.AddressMessage['attrs'] = { local: a.bytes, address: a.bytes }
    if (opts.validLft !== undefined || opts.preferredLft !== undefined) {
      const valid = opts.validLft ?? FOREVER
      attrs.cacheInfo = { ifaValid: valid, ifaPrefered: Math.min(opts.preferredLft ?? valid, valid) }
    }
    if (opts.nodad) attrs.flags = { nodad: true }
    const flags = FlagsNew.CREATE | (opts.replace ? FlagsNew.REPLACE : FlagsNew.EXCL)
    await this.req(what, T.NEWADDR, { kind: 'address', data: { family: afOf(a.family), prefixlen: a.prefix, index }, attrs }, flags)
  }

  /** `ip addr del CIDR dev #INDEX` */
  async delAddr(index: number, cidr: string): Promise<void> {
    const what = `delete address ${cidr} from link #${index}${this.where()}`
    const a = cidrOrUsage(cidr, what)
    await this.req(what, T.DELADDR, { kind: 'address', data: { family: afOf(a.family), prefixlen: a.prefix, index }, attrs: { local: a.bytes, address: a.bytes } }, 0, {
      // on a delete, "cannot assign requested address" means it is not there
      overrides: { EADDRNOTAVAIL: 'NOT_FOUND' },
    })
  }

  // ---- routes -------------------------------------------------------------------------------

  /** Unicast routes of one table (main unless filter.table; 0 = every table). */
  async getRoutes(filter: { family?: Family; table?: number } = {}): Promise<RouteInfo[]> {
    const table = filter.table ?? RT_TABLE_MAIN
    const data: rt.RouteMessage['data'] = { family: filter.family ? afOf(filter.family) : 0, ...(table > 0 && table < 256 ? { table } : {}) }
    const attrs: rt.RouteMessage['attrs'] = table >= 256 ? { table } : {}
    const msgs = await this.req(`list routes${this.where()}`, T.GETROUTE, { kind: 'route', data, attrs }, FlagsGet.DUMP)
    const out: RouteInfo[] = []
    for (const m of msgs) {
      if (m.kind !== 'route') continue
      const r = toRouteInfo(m)
      if (!r || (table && r.table !== table) || (filter.family && r.family !== filter.family)) continue
      out.push(r)
    }
    return out
  }

  /** `ip route add|replace DST [via GW] [dev #OIF] [scope S] [onlink] [metric M] [table T] proto boot` */
  async addRoute(route: RouteSpec, opts: { replace?: boolean } = {}): Promise<void> {
    const what = `${opts.replace ? 'replace' : 'add'} route ${describeRoute(route)}${this.where()}`
    const { data, attrs } = routeMessage(route, what)
    data.protocol = RTPROT_BOOT
    data.type = RTN_UNICAST
    // as `ip route add`: a v4 route without a gateway is on-link (scope link)
    data.scope = SCOPE_VALUES[route.scope ?? (route.family === 4 && !route.gateway ? 'link' : 'universe')]
    const flags = FlagsNew.CREATE | (opts.replace ? FlagsNew.REPLACE : FlagsNew.EXCL)
    await this.req(what, T.NEWROUTE, { kind: 'route', data, attrs }, flags)
  }

  /** `ip route del DST [via GW] [dev #OIF] [metric M] [table T]` (any scope, any protocol) */
  async delRoute(route: RouteSpec): Promise<void> {
    const what = `delete route ${describeRoute(route)}${this.where()}`
    const { data, attrs } = routeMessage(route, what)
    data.scope = RT_SCOPE_NOWHERE
    await this.req(what, T.DELROUTE, { kind: 'route', data, attrs }, 0)
  }

  // ---- neighbours ---------------------------------------------------------------------------

  /** `ip -4 neigh flush dev #INDEX`: the learned IPv4 entries go (permanent ones stay); how many went. */
  async flushNeighbors(index: number): Promise<number> {
    // A strictly checked dump takes the device as NDA_IFINDEX: a non-zero ndm_ifindex is EINVAL.
    const msgs = await this.req(`list the neighbours of link #${index}${this.where()}`, T.GETNEIGH, { kind: 'neighbor', data: { family: AF_INET }, attrs: { ifindex: u32buf(index) } }, FlagsGet.DUMP)
    let gone = 0
    for (const m of msgs) {
      if (m.kind !== 'neighbor' || m.data.ifindex !== index || !m.attrs.dst || m.data.state?.permanent || m.data.state?.noarp) continue
      try {
        await this.req(`delete a neighbour of link #${index}${this.where()}`, T.DELNEIGH, { kind: 'neighbor', data: { family: AF_INET, ifindex: index }, attrs: { dst: m.attrs.dst } }, 0)
        gone++
      } catch (err) {
        // gone meanwhile (expired, or the link itself): nothing to flush
        if (!(err instanceof PlumbError && err.code === 'NOT_FOUND')) throw err
      }
    }
    return gone
  }

  // ---- sysctl -------------------------------------------------------------------------------

  /** /proc/sys/net resolves against the OPENER's netns: a guest handle opens the file inside
   *  its netns (synchronously, in the addon callback), then reads/writes through the fd. */
  private openSysctl(path: string, flags: 'r' | 'r+'): number {
    if (!/^[A-Za-z0-9_.:@+-]+(\/[A-Za-z0-9_.:@+-]+)*$/.test(path) || path.split('/').some((p) => p === '..' || p === '.')) {
      throw usageError(`invalid sysctl path "${path}"`, 'a path under /proc/sys/net, e.g. ipv4/conf/eth1/arp_notify')
    }
    const full = `/proc/sys/net/${path}`
    return this.nsFd === undefined ? openSync(full, flags) : loadAddon().withNetns(this.nsFd, () => openSync(full, flags))
  }

  async setSysctl(path: string, value: string): Promise<void> {
    let fd: number | undefined
    try {
      fd = this.openSysctl(path, 'r+')
      writeSync(fd, value.endsWith('\n') ? value : `${value}\n`)
    } catch (err) {
      throw toPlumbError(err, `set sysctl net.${path.replace(/\//g, '.')}=${value}${this.where()}`, { overrides: { ENOENT: 'NOT_FOUND' } })
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
  }

  async getSysctl(path: string): Promise<string | undefined> {
    let fd: number | undefined
    try {
      fd = this.openSysctl(path, 'r')
      const buf = Buffer.alloc(4096)
      const n = readSync(fd, buf, 0, buf.length, null)
      return buf.subarray(0, n).toString('utf8').trimEnd()
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined
      throw toPlumbError(err, `read sysctl net.${path.replace(/\//g, '.')}${this.where()}`)
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
  }

  // ---- probes -------------------------------------------------------------------------------

  /** Try to create a link of `kind` named `name` in this handle's netns, parented on #1 (lo)
   *  with no kind data: any answer but "Unknown device type" means the kernel knows the kind.
   *  Only meant for a throwaway netns (see probeLinkKind). */
  async probeKind(kind: string, name: string): Promise<boolean> {
    try {
      await this.request(T.NEWLINK, { kind: 'link', data: {}, attrs: { ifname: name, link: u32buf(1), linkinfo: flat(ifla.formatInfo({ kind })) } }, FlagsNew.CREATE | FlagsNew.EXCL, kind)
      return true
    } catch (err) {
      if (err instanceof NetlinkError && isMissingKind(err)) return false
      if (err instanceof NetlinkError) return true
      throw err
    }
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    try {
      this.addrCache?.close()
      this.portCache?.close()
      this.sock.close()
    } finally {
      if (this.nsFd !== undefined) closeSync(this.nsFd)
    }
  }
}

function formatMessage(msg: rt.Message, out: AttrStream): void {
  switch (msg.kind) {
    case 'link':
      return rt.formatLinkMessage(msg, out)
    case 'address':
      return rt.formatAddressMessage(msg, out)
    case 'route':
      return rt.formatRouteMessage(msg, out)
    case 'neighbor':
      return rt.formatNeighborMessage(msg, out)
    default:
      throw new TypeError(`unsupported rtnetlink message kind ${msg.kind}`)
  }
}

const upData = (up: boolean | undefined): rt.LinkMessage['data'] =>
  up === undefined ? {} : up ? { flags: { up: true }, change: { up: true } } : { flags: {}, change: { up: true } }

function macOrUsage(mac: string): Buffer {
  try {
    return parseMac(mac)
  } catch {
    throw usageError(`invalid MAC address "${mac}"`, 'six hex bytes, e.g. 02:42:c6:12:00:0a')
  }
}

function cidrOrUsage(cidr: string, what: string): ReturnType<typeof parseCidr> {
  try {
    return parseCidr(cidr)
  } catch (err) {
    throw usageError(`failed to ${what}: ${(err as Error).message}`, 'ADDR/LEN, e.g. 198.18.0.2/24 or 2001:db8::2/64')
  }
}

/** A permanent PF_BRIDGE entry on the device itself (NTF_SELF): the VXLAN driver's own table. */
function fdbMessage(index: number, mac: string, dst: string, what: string): rt.NeighborMessage {
  let ip: ReturnType<typeof parseIp>
  try {
    ip = parseIp(dst)
  } catch (err) {
    throw usageError(`failed to ${what}: ${(err as Error).message}`)
  }
  return { kind: 'neighbor', data: { family: AF_BRIDGE, ifindex: index, state: { permanent: true }, flags: { self: true } }, attrs: { lladdr: macOrUsage(mac), dst: ip.bytes } }
}

function u16be(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n, 0)
  return b
}

async function mustGet(h: NetHandle, name: string): Promise<LinkInfo> {
  const l = await h.getLink(name)
  if (!l) throw new PlumbError('FAILED', `link "${name}" was created but is not visible in ${h.label}`)
  return l
}

function describeRoute(r: RouteSpec): string {
  return `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.oif ? ` dev #${r.oif}` : ''}${r.onlink ? ' onlink' : ''}${r.metric !== undefined ? ` metric ${r.metric}` : ''}${r.table && r.table !== RT_TABLE_MAIN ? ` table ${r.table}` : ''}`
}

function routeMessage(route: RouteSpec, what: string): { data: rt.RouteMessage['data']; attrs: rt.RouteMessage['attrs'] } {
  let dst: ReturnType<typeof parseDst>
  let gw: Buffer | undefined
  try {
    dst = parseDst(route.dst, route.family)
    if (route.gateway) {
      const g = parseIp(route.gateway)
      if (g.family !== route.family) throw new TypeError(`gateway ${route.gateway} is not IPv${route.family}`)
      gw = g.bytes
    }
  } catch (err) {
    throw usageError(`failed to ${what}: ${(err as Error).message}`)
  }
  const table = route.table ?? RT_TABLE_MAIN
  // rtm_table is 8 bits: bigger table ids go in RTA_TABLE only
  const data: rt.RouteMessage['data'] = { family: afOf(route.family), dstLen: dst.prefix, table: table < 256 ? table : 0 }
  if (route.onlink) data.flags = { __unknown: RTNH_F_ONLINK }
  const attrs: rt.RouteMessage['attrs'] = { table }
  if (dst.bytes) attrs.dst = dst.bytes
  if (gw) attrs.gateway = gw
  if (route.oif !== undefined) attrs.oif = route.oif
  if (route.metric !== undefined) attrs.priority = route.metric
  return { data, attrs }
}

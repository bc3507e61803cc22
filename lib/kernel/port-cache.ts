// The ports of the bridges a handle's segment checks look at, read once per bridge and then kept
// current from the kernel's own link notifications (the link watch in native/setns.c): the n-th
// attach to a bridge no longer dumps the n-1 ports before it (~1.6 kB a port, ~1 ms an attach at
// 50 ports, most of it parsing them). Why that stays right: ./watched-cache.ts (a link message
// carries the link's whole state, so replaying one the dump already saw changes nothing).
// Besides: a bridge deleted is forgotten, since its ifindex may name another link one day.

import { WatchedCache } from './watched-cache.js'
import type { AddrWatch, Heard } from './watched-cache.js'
import type { LinkInfo } from './types.js'

/** RTM_NEWLINK, RTM_DELLINK */
const NEWLINK = 16
const DELLINK = 17

/** [type, master's ifindex (0: none), ifindex, the link message's payload] */
type LinkEvent = [number, number, number, Buffer]

/** A port as last heard of: its link message, parsed when the bridge's ports are next asked for. */
type Port = LinkInfo | Buffer

/** By bridge ifindex: its ports by ifindex. */
export class PortCache extends WatchedCache<number, Map<number, Port>, LinkEvent> {
  constructor(
    watch: AddrWatch,
    private readonly parse: (payload: Buffer) => LinkInfo,
  ) {
    super(watch)
  }

  /**
   * The links whose master is the bridge of ifindex `master`: from the cache when it knows the
   * bridge, else from `read` (a dump, whose errors are the caller's). One drain first. The
   * objects are shared with later calls: do not change them.
   */
  ports(master: number, read: () => Promise<LinkInfo[]>): LinkInfo[] | Promise<LinkInfo[]> {
    this.drain()
    const ports = this.value(master, () => read().then((list) => new Map<number, Port>(list.map((l) => [l.index, l]))))
    return ports instanceof Map ? this.parsed(ports) : ports.then((m) => this.parsed(m))
  }

  /** The ports, each message heard since the last ask parsed now, once (an attach makes ~5 about its port: only the last counts). */
  private parsed(ports: Map<number, Port>): LinkInfo[] {
    const out: LinkInfo[] = []
    for (const [index, port] of ports) {
      if (Buffer.isBuffer(port)) {
        const link = this.parse(port)
        ports.set(index, link)
        out.push(link)
      } else out.push(port)
    }
    return out
  }

  protected hear(events: Heard): void {
    for (const [type, , master, index, payload] of events) {
      if (type !== NEWLINK && type !== DELLINK) continue
      if (type === DELLINK) this.forget(index)
      for (const br of this.keys()) this.change(br, [type, master, index, payload])
    }
  }

  /** A link now on the bridge (whatever it was before), or not (it left, or was deleted). */
  protected apply(ports: Map<number, Port>, [type, master, index, payload]: LinkEvent, br: number): void {
    if (type === NEWLINK && master === br) ports.set(index, payload)
    else ports.delete(index)
  }
}

// The ports of the bridges a handle's segment checks look at, read once per bridge and then kept
// current from the kernel's own link notifications (the link watch in native/setns.c): the n-th
// attach to a bridge no longer dumps the n-1 ports before it (~1.6 kB a port, ~1 ms an attach at
// 50 ports, most of it parsing them). It stays right for the address cache's reasons
// (./addr-cache.ts): the kernel queues a notification before the syscall that changed the link
// returns, and every lookup drains the watch first; a link message carries the link's whole
// state, so replaying one already seen by the dump it followed changes nothing; notifications
// lost (the queue overflowed) forget everything, and the next lookups read again.

import type { AddrWatch } from './addr-cache.js'
import type { LinkInfo } from './types.js'

/** RTM_NEWLINK, RTM_DELLINK */
const NEWLINK = 16
const DELLINK = 17

/** [type, master's ifindex (0: none), ifindex, the link message's payload] */
type LinkEvent = [number, number, number, Buffer]

interface Entry {
  /** by ifindex; undefined while the first read is in flight */
  ports: Map<number, LinkInfo> | undefined
  /** changes heard while the first read was in flight, in order */
  log: LinkEvent[]
  read: Promise<LinkInfo[]> | undefined
}

export class PortCache {
  private readonly bridges = new Map<number, Entry>()
  /** bumped on every reset: a read begun before it is not kept */
  private generation = 0

  constructor(
    private readonly watch: AddrWatch,
    private readonly parse: (payload: Buffer) => LinkInfo,
  ) {}

  /**
   * The links whose master is the bridge of ifindex `master`: from the cache when it knows the
   * bridge, else from `read` (a dump, whose errors are the caller's). One drain first. The
   * objects are shared with later calls: do not change them.
   */
  ports(master: number, read: () => Promise<LinkInfo[]>): LinkInfo[] | Promise<LinkInfo[]> {
    this.drain()
    const known = this.bridges.get(master)
    if (known) return known.ports ? [...known.ports.values()] : known.read!
    return this.read(master, read)
  }

  private read(master: number, read: () => Promise<LinkInfo[]>): Promise<LinkInfo[]> {
    const entry: Entry = { ports: undefined, log: [], read: undefined }
    const generation = this.generation
    entry.read = read().then(
      (list) => {
        const ports = new Map(list.map((l) => [l.index, l]))
        // changes heard since the read was asked for, in order, on top of what it saw
        this.drain()
        for (const e of entry.log) apply(ports, master, e, this.parse)
        entry.log = []
        entry.read = undefined
        if (this.generation === generation && this.bridges.get(master) === entry) entry.ports = ports
        else if (this.bridges.get(master) === entry) this.bridges.delete(master)
        return [...ports.values()]
      },
      (err: unknown) => {
        if (this.bridges.get(master) === entry) this.bridges.delete(master)
        throw err
      },
    )
    this.bridges.set(master, entry)
    return entry.read
  }

  /** Apply what the watch heard since the last drain. */
  private drain(): void {
    const { reset, events } = this.watch.drain()
    if (reset) return this.reset()
    for (const [type, , master, index, payload] of events) {
      if (type !== NEWLINK && type !== DELLINK) continue
      // the bridge itself gone: its ifindex may name another link one day
      if (type === DELLINK) this.bridges.delete(index)
      for (const [br, e] of this.bridges) {
        if (e.ports) apply(e.ports, br, [type, master, index, payload], this.parse)
        else e.log.push([type, master, index, payload])
      }
    }
  }

  private reset(): void {
    this.generation++
    this.bridges.clear()
  }

  close(): void {
    this.bridges.clear()
    this.watch.close()
  }
}

/** One change to the ports of bridge `br`: a link now on it (whatever it was before), or not (left it, or deleted). */
function apply(ports: Map<number, LinkInfo>, br: number, [type, master, index, payload]: LinkEvent, parse: (payload: Buffer) => LinkInfo): void {
  if (type === NEWLINK && master === br) ports.set(index, parse(payload))
  else ports.delete(index)
}

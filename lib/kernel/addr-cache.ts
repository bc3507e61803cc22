// The addresses of links in the netns of a handle's veth peers (guests on a bridge), read once per
// link and then kept current from the kernel's own notifications (the address watch in
// native/setns.c), so that checking a bridge's segment costs one dump per port the first time
// and none after: the n-th attach to a bridge no longer re-reads the n-1 guests before it.
//
// Why it stays right: the kernel queues a notification before the syscall that changed an
// address returns, so draining the watch right before a lookup hears every change made before
// it, in this process or any other. A link read while notifications were still arriving keeps
// a log of them, replayed on top of the dump once it answers (a change the dump already shows
// is replayed harmlessly: the last word on each address wins). A netns id taken back (its netns
// gone) forgets the links known under it, since the id may name another netns next; the watch's
// queue overflowing (notifications lost) forgets everything. The next lookups read again.

import type { Family } from './types.js'

/** RTM_NEWADDR; RTM_DELNSID (an id taken back: its netns is gone, the id free for another) */
const NEWADDR = 20
const DELNSID = 89

/** A watch socket as the setns addon drains it (native.ts: addrWatchDrain): [type, netns id, family (a link's: its master), ifindex, bytes]. */
export interface AddrWatch {
  drain(): { reset: boolean; events: Array<[number, number, number, number, Buffer]> }
  close(): void
}

interface Entry {
  netnsId: number
  /** undefined while the first read is in flight */
  addrs: Set<string> | undefined
  /** changes heard while the first read was in flight, in order: [added?, address] */
  log: Array<[boolean, string]>
  read: Promise<Set<string>> | undefined
}

/** Past this many links known, forget them all rather than grow (a host churning containers). */
const MAX_ENTRIES = 20000

const keyOf = (netnsId: number, index: number, family: number): string => `${netnsId}/${index}/${family}`

export class AddrCache {
  private readonly entries = new Map<string, Entry>()
  /** bumped on every reset: a read begun before it is not kept */
  private generation = 0

  constructor(
    private readonly watch: AddrWatch,
    private readonly format: (bytes: Buffer) => string,
  ) {}

  /**
   * The addresses (as text) of each link asked for, [netns id (-1: the watch's own netns),
   * ifindex, family]: from the cache when it knows the link, else from `read` (a dump, whose
   * errors are the caller's: that link's answer is the rejected promise). One drain first.
   */
  lookup(links: Array<[number, number, Family]>, read: (netnsId: number, index: number, family: Family) => Promise<string[]>): Array<ReadonlySet<string> | Promise<ReadonlySet<string>>> {
    this.drain()
    return links.map(([netnsId, index, family]) => {
      // The watch's own netns is read every time: its notifications carry no id, or the id the
      // netns may have been given for itself (`ip netns set`), which this side cannot tell apart
      // from a peer's. It is one link per segment check (the bridge itself, a macvlan's parent).
      if (netnsId === -1) return read(netnsId, index, family).then((list) => new Set(list))
      const key = keyOf(netnsId, index, family)
      const known = this.entries.get(key)
      return known ? (known.addrs ?? known.read!) : this.read(key, netnsId, () => read(netnsId, index, family))
    })
  }

  private read(key: string, netnsId: number, read: () => Promise<string[]>): Promise<ReadonlySet<string>> {
    if (this.entries.size >= MAX_ENTRIES) this.reset()
    const entry: Entry = { netnsId, addrs: undefined, log: [], read: undefined }
    const generation = this.generation
    entry.read = read().then(
      (list) => {
        const addrs = new Set(list)
        // changes heard since the read was asked for, in order, on top of what it saw
        this.drain()
        for (const [added, a] of entry.log) added ? addrs.add(a) : addrs.delete(a)
        entry.log = []
        entry.read = undefined
        if (this.generation === generation && this.entries.get(key) === entry) entry.addrs = addrs
        else if (this.entries.get(key) === entry) this.entries.delete(key)
        return addrs
      },
      (err: unknown) => {
        if (this.entries.get(key) === entry) this.entries.delete(key)
        throw err
      },
    )
    this.entries.set(key, entry)
    return entry.read
  }

  /** Apply what the watch heard since the last drain. */
  private drain(): void {
    const { reset, events } = this.watch.drain()
    if (reset) return this.reset()
    for (const [type, netnsId, family, index, bytes] of events) {
      if (type === DELNSID) {
        for (const [key, e] of this.entries) if (e.netnsId === netnsId) this.entries.delete(key)
        continue
      }
      const entry = this.entries.get(keyOf(netnsId, index, family))
      if (!entry) continue
      const added = type === NEWADDR
      const a = this.format(bytes)
      if (entry.addrs) added ? entry.addrs.add(a) : entry.addrs.delete(a)
      else entry.log.push([added, a])
    }
  }

  private reset(): void {
    this.generation++
    this.entries.clear()
  }

  close(): void {
    this.entries.clear()
    this.watch.close()
  }
}

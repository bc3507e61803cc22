// The addresses of links in the netns of a handle's veth peers (guests on a bridge), read once per
// link and then kept current from the kernel's own notifications (the address watch in
// native/setns.c), so that checking a bridge's segment costs one dump per port the first time
// and none after: the n-th attach to a bridge no longer re-reads the n-1 guests before it. Why
// that stays right: ./watched-cache.ts. Besides: a netns id taken back (its netns gone) forgets
// the links known under it, since the id may name another netns next.

import type { Family } from './types.js'
import { WatchedCache } from './watched-cache.js'
import type { AddrWatch, Heard } from './watched-cache.js'

/** RTM_NEWADDR; RTM_DELNSID (an id taken back: its netns is gone, the id free for another) */
const NEWADDR = 20
const DELNSID = 89

/** Past this many links known, forget them all rather than grow (a host churning containers). */
const MAX_ENTRIES = 20000

/** [netns id, ifindex, family] */
type LinkKey = string
const keyOf = (netnsId: number, index: number, family: number): LinkKey => `${netnsId}/${index}/${family}`

/** [added?, the address's bytes]: formatted only for a link the cache knows */
type AddrChange = [boolean, Buffer]

export class AddrCache extends WatchedCache<LinkKey, Set<string>, AddrChange> {
  constructor(
    watch: AddrWatch,
    private readonly format: (bytes: Buffer) => string,
  ) {
    super(watch, MAX_ENTRIES)
  }

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
      return this.value(keyOf(netnsId, index, family), () => read(netnsId, index, family).then((list) => new Set(list)))
    })
  }

  /**
   * A veth's end just made by this process in the netns of id `netnsId` (never the watch's own):
   * it has no address of either family yet (a link is born down and bare), so the next segment
   * check need not read it. What it is given from now on is heard as for any other link.
   */
  fresh(netnsId: number, index: number): void {
    if (netnsId === -1) return
    this.seed([
      [keyOf(netnsId, index, 4), new Set()],
      [keyOf(netnsId, index, 6), new Set()],
    ])
  }

  protected hear(events: Heard): void {
    for (const [type, netnsId, family, index, bytes] of events) {
      if (type === DELNSID) {
        for (const key of this.keys()) if (key.startsWith(`${netnsId}/`)) this.forget(key)
        continue
      }
      this.change(keyOf(netnsId, index, family), [type === NEWADDR, bytes])
    }
  }

  protected apply(addrs: Set<string>, [added, bytes]: AddrChange): void {
    const a = this.format(bytes)
    if (added) addrs.add(a)
    else addrs.delete(a)
  }
}

// What the caches kept current by a watch socket of the setns addon share (./addr-cache.ts: the
// addresses of guests' links; ./port-cache.ts: the ports of bridges): a value is read once (a
// dump), then changed by what the watch hears, drained right before every lookup.
//
// Why it stays right: the kernel queues a notification before the syscall that made the change
// returns, so a drain right before a lookup hears every change made before it, in this process
// or any other. A value read while notifications were still arriving keeps a log of them,
// replayed on top of the dump once it answers (a change the dump already shows is replayed
// harmlessly: each notification carries the last word on what it is about). The watch's queue
// overflowing (notifications lost) forgets everything; the next lookups read again.

/** A watch socket as the setns addon drains it (native.ts: addrWatchDrain): [type, netns id, family (a link's: its master), ifindex, bytes]. */
export interface AddrWatch {
  drain(): { reset: boolean; events: Array<[number, number, number, number, Buffer]> }
  close(): void
}

export type Heard = ReturnType<AddrWatch['drain']>['events']

interface Entry<V, C> {
  /** undefined while the first read is in flight */
  value: V | undefined
  /** changes heard while the first read was in flight, in order */
  log: C[]
  read: Promise<V> | undefined
}

export abstract class WatchedCache<K, V, C> {
  private readonly entries = new Map<K, Entry<V, C>>()
  /** bumped on every reset: a read begun before it is not kept */
  private generation = 0

  constructor(
    private readonly watch: AddrWatch,
    /** past this many values known, forget them all rather than grow */
    private readonly maxEntries = Infinity,
  ) {}

  /** Turn what the watch heard into changes (change()) and forgetting (forget()). */
  protected abstract hear(events: Heard): void

  /** One change heard to the known value of `key`. */
  protected abstract apply(value: V, change: C, key: K): void

  /** Apply what the watch heard since the last drain. */
  protected drain(): void {
    const { reset, events } = this.watch.drain()
    if (reset) return this.reset()
    this.hear(events)
  }

  /** The value of `key`: known, its first read in flight, or read now by `read` (whose errors are the caller's, and are not kept). */
  protected value(key: K, read: () => Promise<V>): V | Promise<V> {
    const known = this.entries.get(key)
    if (known) return known.value ?? known.read!
    if (this.entries.size >= this.maxEntries) this.reset()
    const entry: Entry<V, C> = { value: undefined, log: [], read: undefined }
    const generation = this.generation
    entry.read = read().then(
      (value) => {
        // changes heard since the read was asked for, in order, on top of what it saw
        this.drain()
        for (const c of entry.log) this.apply(value, c, key)
        entry.log = []
        entry.read = undefined
        if (this.generation === generation && this.entries.get(key) === entry) entry.value = value
        else if (this.entries.get(key) === entry) this.entries.delete(key)
        return value
      },
      (err: unknown) => {
        if (this.entries.get(key) === entry) this.entries.delete(key)
        throw err
      },
    )
    this.entries.set(key, entry)
    return entry.read
  }

  /**
   * What some keys are as of now, known without a read (a link this process has just made): what
   * was heard before is drained first (it is not theirs), what is heard after applies to them;
   * they replace whatever was known or being read for those keys.
   */
  protected seed(values: Array<[K, V]>): void {
    this.drain()
    if (this.entries.size + values.length > this.maxEntries) this.reset()
    for (const [key, value] of values) this.entries.set(key, { value, log: [], read: undefined })
  }

  /** The keys known or being read. */
  protected keys(): IterableIterator<K> {
    return this.entries.keys()
  }

  /** A change heard for `key`: applied to its value, or logged while its first read is in flight. */
  protected change(key: K, c: C): void {
    const entry = this.entries.get(key)
    if (!entry) return
    if (entry.value !== undefined) this.apply(entry.value, c, key)
    else entry.log.push(c)
  }

  /** What `key` named is gone (and its name may be given to another): the next lookup reads. Safe while iterating keys(). */
  protected forget(key: K): void {
    this.entries.delete(key)
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

// A watch socket of the setns addon (lib/kernel/watched-cache.ts's AddrWatch) played by a script: the
// caches' unit tests say what the kernel "heard" between two drains, in the orders a real host
// produces only by chance.

import type { AddrWatch } from '../../lib/kernel/watched-cache.js'

export type Heard = ReturnType<AddrWatch['drain']>

export function scriptedWatch(): { watch: AddrWatch; hear: (h: Partial<Heard>) => void; closed: () => boolean } {
  let queue: Heard = { reset: false, events: [] }
  let closed = false
  return {
    watch: {
      drain: () => {
        const out = queue
        queue = { reset: false, events: [] }
        return out
      },
      close: () => void (closed = true),
    },
    hear: (h) => void (queue = { reset: queue.reset || !!h.reset, events: [...queue.events, ...(h.events ?? [])] }),
    closed: () => closed,
  }
}

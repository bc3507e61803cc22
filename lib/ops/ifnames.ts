// Interface names plumb picks: the first free ethN in a guest, and the host end's derived name.

import { PlumbError, conflict } from '../errors.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { deriveHostIfname } from '../parse/index.js'
import type { Netns } from '../guest/index.js'

/** The first ethN (N ≥ 1, as pipework: eth0 is where Docker's own networking would go) not in use. */
export function firstFreeEth(links: LinkInfo[], skip: Set<string> = new Set()): string {
  const used = new Set(links.map((l) => l.name))
  for (let n = 1; ; n++) {
    const name = `eth${n}`
    if (!used.has(name) && !skip.has(name)) return name
  }
}

/**
 * Find the host end's name: derived from the guest's identity and the guest ifname, so a
 * re-run finds the same one; a name held by something else steps to the next variant.
 */
export async function pickHostIfname(
  hostNs: NetHandle,
  netns: Netns,
  ifname: string,
  given?: string,
  /** the first candidate for `ifname` (deriveHostIfname's), and its lookup already sent */
  prefetched?: { ifname: string; name: string; lookup: Promise<LinkInfo | undefined> },
): Promise<string> {
  if (given !== undefined) {
    const existing = await hostNs.getLink(given)
    if (existing) throw conflict(`host interface "${given}" already exists`, 'choose another -l name, or leave -l out to get a derived one')
    return given
  }
  const taken = new Set<string>()
  for (let i = 0; i < 16; i++) {
    // the first candidate is the one prefetched when it was for this ifname: one sha256 fewer
    const first = i === 0 && prefetched?.ifname === ifname ? prefetched : undefined
    const name = first ? first.name : deriveHostIfname(netns.key, ifname, (n) => taken.has(n))
    const lookup = first ? first.lookup : hostNs.getLink(name)
    if (!(await lookup)) return name
    taken.add(name)
  }
  throw new PlumbError('FAILED', `failed to find a free host interface name for ${netns.label} ${ifname}`)
}


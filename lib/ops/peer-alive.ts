// A container's veth host end whose other end is still in a live netns, though the engine asked
// says the container is gone: gc keeps it, ls does not call it an orphan.

import { asPlumbError } from '../errors.js'
import { errnoOf } from '../kernel/index.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { parseGuestRef } from '../parse/index.js'

/**
 * A veth host end of a container the engine says is gone, whose other end is still in a live
 * netns: a veth dies with its netns, so that netns is someone's. The engine asked was the wrong
 * one (a second dockerd, DOCKER_HOST pointing elsewhere), or another container shares the netns;
 * either way not a leftover. A removed container's netns is torn down by the kernel after the
 * engine says it is gone, its veths last: while it dies, a request naming its netns id is EINVAL
 * (and the end is a leftover). (A netns guest whose name was removed while a process holds the
 * netns is one too: its host end goes.)
 */
export async function peerAliveInContainer(hostNs: NetHandle, l: LinkInfo, guest: string | undefined): Promise<boolean> {
  if (l.kind !== 'veth' || l.linkNetnsId === undefined || l.link === undefined || !guest) return false
  try {
    if (parseGuestRef(guest).kind !== 'container') return false
  } catch {
    return false
  }
  try {
    await hostNs.getAddrs({ netnsId: l.linkNetnsId, index: l.link, family: 4 })
    return true
  } catch (err) {
    const errno = errnoOf(asPlumbError(err).cause)
    return !(errno === 'EINVAL' || errno === 'ENODEV')
  }
}

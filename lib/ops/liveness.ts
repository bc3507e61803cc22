// Proof that a container its engine says it does not have is alive all the same. plumb's marks
// name a container as docker:NAME, not which daemon: two Docker daemons on one host (a rootful and
// a rootless one, a CI's docker-in-docker) each know only their own, and a container may have been
// renamed since. Asked through one daemon, gc would take the other's containers for gone and delete
// their interfaces, rules and records. A container's processes live in its netns until it is
// removed (the engine stops them first), so a process in the netns of a guest's host end (or of
// its record) proves the guest there, whatever its engine says: gc keeps what is its. A removed
// container's netns has no process left, only its veths for the moment the kernel takes to tear
// it down: no proof.

import { readdirSync, statSync } from 'node:fs'
import { closeFd, openNetnsFd } from '../kernel/index.js'
import { netnsAt } from '../guest/nsfile.js'
import type { NetHandle } from '../kernel/types.js'
import { parseMark } from '../parse/index.js'
import { listRecords } from './guest-record.js'

/** A netns with a process in it: the netns's identity and one such pid. */
export interface LiveNetns {
  pid: number
  dev: number
  ino: number
}

/** Why a container its engine says it does not have counts as there all the same: gc's and ls's one wording. */
export function aliveReason(goneReason: string, label: string, live: LiveNetns): string {
  return `${goneReason}, but a process (pid ${live.pid}) is in the netns of what plumb made for ${label}: a container of that name on another engine (another DOCKER_HOST), or one renamed`
}

/** The live netns of what plumb made for the guest `label` (a process is in it), if there is one. */
export type AliveElsewhere = (label: string) => Promise<LiveNetns | undefined>

/**
 * The proofs of one gc or ls run, gathered once on the first question (only an engine's "no such
 * container" asks): the netns processes are in, the guest records' netns, and the netns ids of
 * plumb's host ends' peers.
 */
export function aliveElsewhere(hostNs: NetHandle): AliveElsewhere {
  let proofs: Promise<Map<string, LiveNetns>> | undefined
  const gather = async (): Promise<Map<string, LiveNetns>> => {
    const inUse = netnsInUse()
    const byLabel = new Map<string, LiveNetns>()
    for (const r of listRecords()) {
      const live = inUse.get(`${r.netnsDev}:${r.netnsIno}`)
      // the inode alone could be a later netns's (the kernel gives a freed one's inode again)
      if (live === undefined || (r.netnsCookie !== undefined && netnsAt(`/proc/${live.pid}/ns/net`)?.cookie !== r.netnsCookie)) continue
      byLabel.set(r.guest, live)
    }
    const ends = (await hostNs.getLinks()).flatMap((l) => {
      const m = parseMark(l.alias)
      return m?.role === 'host' && m.guest && l.linkNetnsId !== undefined ? [{ guest: m.guest, nsid: l.linkNetnsId }] : []
    })
    if (ends.length) {
      const byNsId = await nsIdsInUse(hostNs, inUse)
      for (const e of ends) {
        const live = byNsId.get(e.nsid)
        if (live !== undefined && !byLabel.has(e.guest)) byLabel.set(e.guest, live)
      }
    }
    return byLabel
  }
  return async (label) => (await (proofs ??= gather())).get(label)
}

/** Each netns a process is in now (by `dev:ino`, from /proc/PID/ns/net), with one such pid; this process's own left out. */
export function netnsInUse(): Map<string, LiveNetns> {
  const out = new Map<string, LiveNetns>()
  const self = statSync('/proc/self/ns/net')
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const s = statSync(`/proc/${name}/ns/net`)
      const key = `${s.dev}:${s.ino}`
      if (!out.has(key) && !(s.dev === self.dev && s.ino === self.ino)) out.set(key, { pid: Number(name), dev: s.dev, ino: s.ino })
    } catch {
      // exited meanwhile, or a kernel thread's
    }
  }
  return out
}

/** The netns in use by the id this netns gives each (those it has given one: a veth peer's). */
async function nsIdsInUse(hostNs: NetHandle, inUse: Map<string, LiveNetns>): Promise<Map<number, LiveNetns>> {
  const out = new Map<number, LiveNetns>()
  for (const live of inUse.values()) {
    let fd: number
    try {
      fd = openNetnsFd(`/proc/${live.pid}/ns/net`)
    } catch {
      continue // exited meanwhile
    }
    try {
      const id = await hostNs.nsIdOf(fd)
      if (id !== undefined) out.set(id, live)
    } finally {
      closeFd(fd)
    }
  }
  return out
}

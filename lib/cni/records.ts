// One small file per attachment (dataDir/NETWORK/CONTAINERID:IFNAME, the spec's primary key),
// written before the IPAM ADD and removed after the IPAM DEL. The links themselves are found by
// their marks; the record is what outlives them: an IPAM reservation, which a mark cannot carry,
// and the netns the attachment was made in. GC walks the records of its network to find
// attachments the runtime no longer knows (a `ctr run -d` container never gets a DEL), and a
// plumb killed half-way through an ADD leaves its record (or, killed while writing it, the
// record's temporary file) for GC or the next DEL.

import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { removeDeadTemps, writeFileAtomic } from '../write-file.js'
import { join } from 'node:path'
import type { OpName } from './config.js'
import type { NsId } from '../ops/journal.js'

/** A netns as a record knows it: its inode, and its cookie (records written before it have none). */
export interface NetnsIdentity {
  nsDev: number
  nsIno: number
  nsCookie?: number
}

/** The same identity as the journal's NsId, for its sameNs. */
export const recordNs = (id: NetnsIdentity): NsId => ({ dev: id.nsDev, ino: id.nsIno, ...(id.nsCookie === undefined ? {} : { cookie: id.nsCookie }) })

export interface AttachmentRecord extends NetnsIdentity {
  v: 1
  containerId: string
  /** CNI_IFNAME */
  ifname: string
  op: OpName
  /** CNI_NETNS at ADD, and the netns's identity then (a path may later name another netns) */
  netns: string
  /** the IPAM plugin holding an address for it */
  ipam?: string
  /** unix ms */
  at: number
}

// ':' is in neither a container id nor an interface name (the spec forbids it in both).
const fileOf = (dataDir: string, network: string, containerId: string, ifname: string): string => join(dataDir, network, `${containerId}:${ifname}`)

export function writeRecord(dataDir: string, network: string, rec: AttachmentRecord): void {
  const file = fileOf(dataDir, network, rec.containerId, rec.ifname)
  mkdirSync(join(dataDir, network), { recursive: true })
  writeFileAtomic(file, JSON.stringify(rec))
}

export function readRecord(dataDir: string, network: string, containerId: string, ifname: string): AttachmentRecord | undefined {
  try {
    const rec = JSON.parse(readFileSync(fileOf(dataDir, network, containerId, ifname), 'utf8')) as AttachmentRecord
    return rec.v === 1 ? rec : undefined
  } catch {
    return undefined
  }
}

/** Remove an attachment's record, and what a plumb killed while writing it left (its temporary file). */
export function removeRecord(dataDir: string, network: string, containerId: string, ifname: string): void {
  rmSync(fileOf(dataDir, network, containerId, ifname), { force: true })
  removeDeadTemps(join(dataDir, network), `${containerId}:${ifname}`)
}

/** The temporary files killed writers left among a network's records (GC's sweep). */
export function removeDeadRecordTemps(dataDir: string, network: string): void {
  removeDeadTemps(join(dataDir, network))
}

/** Every record of a network; files that are not records are skipped. */
export function listRecords(dataDir: string, network: string): AttachmentRecord[] {
  let names: string[]
  try {
    names = readdirSync(join(dataDir, network))
  } catch {
    return []
  }
  const out: AttachmentRecord[] = []
  for (const name of names) {
    const colon = name.indexOf(':')
    if (colon <= 0 || name.endsWith('.tmp')) continue
    const rec = readRecord(dataDir, network, name.slice(0, colon), name.slice(colon + 1))
    if (rec) out.push(rec)
  }
  return out
}

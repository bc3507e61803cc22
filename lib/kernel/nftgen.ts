// The nftables generation of plumb's own netns: a counter the kernel bumps on every committed
// nftables transaction, iptables-nft's included (NFT_MSG_GETGEN, what `nft monitor` and
// iptables-nft's own cache check read). One request on a NETLINK_NETFILTER socket, ~0.05 ms,
// against ~5-10 ms for the spawns of an `iptables -S`: lib/firewall keys what it read from
// iptables by it.

import { NetlinkError } from './errors.js'
import { RtSocket } from './socket.js'

const NETLINK_NETFILTER = 12
const NFNL_SUBSYS_NFTABLES = 10
const NFT_MSG_GETGEN = 16
const NFT_MSG_NEWGEN = 15
const NFTA_GEN_ID = 1
/** struct nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, res_id 0 */
const NFGENMSG = Buffer.alloc(4)

/** One socket per process, opened on the first call (in the process's netns: never called inside
 *  withNetns), kept for the next: a library caller asks on every attach. A bare fd, as every
 *  RtSocket: it keeps no process alive. */
let socket: RtSocket | undefined

/**
 * The current generation, or undefined when the kernel gives none (no nf_tables): the caller
 * then has no key and must read the tables itself. Errors other than "no nf_tables" reject.
 */
export async function nftGeneration(): Promise<number | undefined> {
  let sock: RtSocket
  try {
    sock = socket ??= new RtSocket(NETLINK_NETFILTER)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPROTONOSUPPORT') return undefined // a kernel without nfnetlink
    throw err
  }
  try {
    const replies = await sock.request((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, [NFGENMSG], 0, { op: 'NFT_MSG_GETGEN' })
    const gen = replies.find((m) => m.type === ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN))
    if (!gen) return undefined
    // attributes after the 4-byte nfgenmsg, each 4-aligned: len u16, type u16 (NLA_F_* bits off), payload
    for (let off = 4; off + 4 <= gen.data.length; ) {
      const len = gen.data.readUInt16LE(off)
      if (len < 4) break
      if ((gen.data.readUInt16LE(off + 2) & 0x3fff) === NFTA_GEN_ID && len >= 8) return gen.data.readUInt32BE(off + 4)
      off += (len + 3) & ~3
    }
    return undefined
  } catch (err) {
    // a socket that failed is not asked again
    if (socket === sock) socket = undefined
    sock.close()
    // EINVAL/EOPNOTSUPP/ENOENT: the subsystem is not there (module not loaded); nothing to key by
    if (err instanceof NetlinkError && ['EINVAL', 'EOPNOTSUPP', 'ENOENT'].includes(err.code)) return undefined
    throw err
  }
}

// Forgetting the conntrack entries of a host port: a UDP flow's entry keeps the translation it
// was made with (or none) for as long as packets keep coming, so after a publish, an unpublish
// or a republish to another guest the old entry would still decide where the flow goes.

import { run } from '../proc.js'

/** The `conntrack` lines that forget the flows to `port` on each of the host's addresses. */
export function forgetLines(proto: 'tcp' | 'udp', port: number, addrs: readonly string[]): string[] {
  return addrs.map((a) => `conntrack -D -p ${proto} --orig-dst ${a} --orig-port-dst ${port}`)
}

// One spawn for every address; `conntrack -D` exits 1 when nothing matched, which is fine.
const FORGET = 'command -v conntrack >/dev/null || exit 127; p=$1; port=$2; shift 2; for a; do conntrack -D -p "$p" --orig-dst "$a" --orig-port-dst "$port" >/dev/null 2>&1; done; exit 0'

/**
 * Delete the entries of flows to host port `port` on the host's own addresses (not the host's
 * outbound flows to that port elsewhere). False when the conntrack tool is missing.
 */
export async function forgetFlows(proto: 'tcp' | 'udp', port: number, addrs: readonly string[]): Promise<boolean> {
  if (addrs.length === 0) return true
  const r = await run('sh', ['-c', FORGET, 'sh', proto, String(port), ...addrs])
  return r.exitCode !== 127
}

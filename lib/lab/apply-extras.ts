// The lab sections that ride on ops this build does not have yet: a node's `sysctls:` (plumb
// sysctl) and `names:` (plumb names), `nat:` (plumb expose, masquerade, isolate) and vxlan links
// (plumb vxlan). They are parsed and validated in full (parse.ts, parse-extras.ts); deploying one
// is refused before anything is touched, naming the op it waits for.
//
// TODO(lead): wire each op here when it lands on main. The shape each one takes:
//   deploy:  await tx.step(`plumb sysctl GUEST K=V`, () => sysctl({ guest, set, lab }), { line: ..., run: () => sysctl({ guest, keys, del: true }) })
//   destroy: the op's own --del (names --del, expose --del, masquerade --del, isolate --del, vxlan --del)
//   check:   nothing: checks read the result (has-route, tcp host:PORT, exec cat /etc/hosts, ...)
// `lab` goes into the op's marks so destroy finds what the lab did.

import { unsupported } from '../errors.js'
import type { Lab } from './types.js'

/** What of the file needs an op that is not here, as [path in the file, the op it needs]. */
export function pendingExtras(lab: Lab): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const n of lab.nodes) {
    if (Object.keys(n.sysctls).length) out.push([`${n.at}.sysctls`, 'plumb sysctl'])
    if (n.names) out.push([`${n.at}.names`, 'plumb names'])
  }
  for (const e of lab.nat.expose) out.push([e.at, 'plumb expose'])
  for (const m of lab.nat.masquerade) out.push([m.at, 'plumb masquerade'])
  for (const i of lab.nat.isolate) out.push([i.at, 'plumb isolate'])
  for (const l of lab.links) if (l.kind === 'vxlan') out.push([l.at, 'plumb vxlan'])
  return out
}

/** Refuse (exit 5, nothing touched) a lab that needs an op this build lacks. */
export function assertExtrasSupported(lab: Lab): void {
  const pending = pendingExtras(lab)
  if (pending.length === 0) return
  const [at, op] = pending[0]!
  const more = pending.length > 1 ? ` (and ${pending.slice(1).map(([a, o]) => `${a}: ${o}`).join(', ')})` : ''
  throw unsupported(
    `${lab.file}: ${at} needs \`${op}\`, which this build of plumb does not have yet${more}`,
    `deploy the rest by hand, or drop that section for now; \`plumb lab check\` grades the lab all the same`,
  )
}

// What a lab's nodes are called on the host: containerlab's prefix rule, and the guest refs,
// labels and mark fields that tie what a lab made back to the lab.

import type { Lab, LabNode } from './types.js'

/**
 * containerlab's rule: no prefix -> `clab-LAB-NODE`; `prefix: ""` -> `NODE`; the special
 * `__lab-name` -> `LAB-NODE`; any other prefix P -> `P-LAB-NODE`.
 */
export function runtimeName(lab: string, prefix: string | undefined, node: string): string {
  if (prefix === undefined) return `clab-${lab}-${node}`
  if (prefix === '') return node
  if (prefix === '__lab-name') return `${lab}-${node}`
  return `${prefix}-${lab}-${node}`
}

/** Docker labels on the containers a lab starts: destroy finds exactly those. */
export const LABEL_LAB = 'plumb.lab'
export const LABEL_NODE = 'plumb.lab.node'

/** The owner-mark field (`lab=NAME`) on every interface, bridge and OVS row a lab makes. */
export const MARK_LAB = 'lab'
/** OVS external_ids key of a lab's bridges and ports. */
export const OVS_LAB_KEY = 'plumb-lab'

/** How plumb's ops name a node (a guest ref): `docker:NAME` or `netns:NAME`. */
export function guestOf(node: LabNode): string {
  return node.kind === 'netns' ? `netns:${node.runtime}` : `docker:${node.runtime}`
}

export const isGuestNode = (n: LabNode | undefined): boolean => n !== undefined && (n.kind === 'linux' || n.kind === 'netns')

export function nodeByName(lab: Lab): Map<string, LabNode> {
  return new Map(lab.nodes.map((n) => [n.name, n]))
}

/** An argument as a shell needs it written in a plan line. */
export const quote = (s: string): string => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`)

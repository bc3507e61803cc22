// The lab sections that ride on plumb's other ops rather than on links: a node's `sysctls:`
// (plumb sysctl) and `names:` (plumb names) and vxlan links (plumb vxlan); `nat:` is ./nat.ts.
// Each op is idempotent and undoable by its own --del: deploy runs it every time (a rerun changes
// nothing), destroy runs its --del.
//
import type { OpResult } from '../ops/result.js'
import type { Tx } from '../ops/tx.js'
import { parseMark } from '../parse/index.js'
import type { LinkInfo } from '../kernel/types.js'
import { MARK_LAB, guestOf, isGuestNode, quote } from './names.js'
import type { Lab, LabLink, LabNode } from './types.js'

interface ExtrasOptions {
  log?: (line: string) => void
  /** false: record nothing for replay (--no-persist) */
  persist?: boolean
  /** what changed, for the deploy's messages */
  messages: string[]
}

type VxlanLink = Extract<LabLink, { kind: 'vxlan' }>
const vxlanLinks = (lab: Lab): VxlanLink[] => lab.links.filter((l): l is VxlanLink => l.kind === 'vxlan')

/**
 * The overlays (vxlan links), before the links: `plumb vxlan` sets the bridge's MTU to what the
 * overlay carries, and the guests attached after it take that MTU.
 */
export async function applyOverlays(tx: Tx, lab: Lab, nodes: Map<string, LabNode>, o: ExtrasOptions): Promise<void> {
  const { vxlan } = await import('../ops/vxlan.js')
  for (const l of vxlanLinks(lab)) {
    const bridge = nodes.get(l.bridge)!.runtime
    const args = { bridge, vni: l.vni, remotes: l.remote, ...(l.local ? { local: l.local } : {}), ...(l.dev ? { dev: l.dev } : {}), ...(l.dstport ? { dstport: l.dstport } : {}) }
    const line = `plumb vxlan ${bridge} --vni ${l.vni} --remote ${l.remote.join(',')}${l.local ? ` --local ${l.local}` : ''}${l.dev ? ` --dev ${l.dev}` : ''}${l.dstport ? ` --dstport ${l.dstport}` : ''}`
    const r = await tx.step(line, () => vxlan({ ...args, lab: lab.name, ...(o.log ? { log: o.log } : {}) }), {
      line: `plumb vxlan ${bridge} --vni ${l.vni} --remote ${l.remote.join(',')} --del`,
      run: (res: OpResult) => (res.changed ? vxlan({ ...args, del: true }) : Promise.resolve()),
    })
    if (r?.changed) o.messages.push(...r.messages.map((m) => `${l.at}: ${m}`))
  }
}

/** A guest node's sysctls and names, after its links (an `ip netns` node's names go into /etc/netns/NAME). */
export async function applyGuestExtras(tx: Tx, lab: Lab, o: ExtrasOptions): Promise<void> {
  const [{ sysctl }, { names }] = await Promise.all([import('../ops/sysctl.js'), import('../ops/names.js')])
  const common = { lab: lab.name, ...(o.persist === false ? { persist: false } : {}), ...(o.log ? { log: o.log } : {}) }
  for (const n of lab.nodes) {
    if (!isGuestNode(n)) continue
    const guest = guestOf(n)
    const settings = Object.entries(n.sysctls).map(([k, v]) => `${k}=${v}`)
    if (settings.length) {
      const r = await tx.step(`plumb sysctl ${guest} ${settings.map(quote).join(' ')}`, () => sysctl({ ...common, guest, settings }), {
        line: `plumb sysctl ${guest} ${Object.keys(n.sysctls).join(' ')} --del`,
        run: (res: OpResult) => (res.changed ? sysctl({ guest, settings: Object.keys(n.sysctls), del: true }) : Promise.resolve()),
      })
      if (r?.changed) o.messages.push(`${n.at}.sysctls: ${settings.join(' ')}`)
    }
    if (n.names) {
      const args = namesArgs(guest, n)
      const r = await tx.step(`plumb names ${guest}${namesFlags(n)}`, () => names({ ...common, ...args }), {
        line: `plumb names ${guest}${namesFlags(n)} --del`,
        run: (res: OpResult) => (res.changed ? names({ ...args, del: true }) : Promise.resolve()),
      })
      if (r?.changed) o.messages.push(`${n.at}.names: ${r.messages.join('; ')}`)
    }
  }
}

function namesArgs(guest: string, n: LabNode) {
  const s = n.names!
  return {
    guest,
    ...(s.hostname !== undefined ? { hostname: s.hostname } : {}),
    addHosts: s.addHost,
    dns: s.dns,
    dnsSearch: s.dnsSearch,
    dnsOptions: s.dnsOption,
  }
}

function namesFlags(n: LabNode): string {
  const s = n.names!
  return [
    ...(s.hostname !== undefined ? ['--hostname', s.hostname] : []),
    ...s.addHost.flatMap((h) => ['--add-host', h]),
    ...s.dns.flatMap((d) => ['--dns', d]),
    ...s.dnsSearch.flatMap((d) => ['--dns-search', d]),
    ...s.dnsOption.flatMap((d) => ['--dns-option', d]),
  ]
    .map((w) => ` ${quote(w)}`)
    .join('')
}

/** The lab's VXLAN ports on the host (marked with its name), as `plumb vxlan --del` takes them. */
export function labOverlays(hostLinks: LinkInfo[], lab: string): Array<{ bridge: string; vni: string }> {
  return hostLinks.flatMap((l) => {
    const m = parseMark(l.alias)
    return m?.role === 'port' && m.op === 'vxlan' && m.extra?.[MARK_LAB] === lab && m.bridge && m.extra.vni ? [{ bridge: m.bridge, vni: m.extra.vni }] : []
  })
}

/**
 * destroy: the lab's overlays, and the sysctls and names the file gives its guests that are there
 * (each op's own --del: the values plumb found come back, its lines go, its records are forgotten).
 * Before the nodes go: an ip netns node's /etc/netns files outlive the netns otherwise.
 */
export async function removeExtras(tx: Tx, lab: Lab, present: LabNode[], overlays: Array<{ bridge: string; vni: string }>): Promise<boolean> {
  let changed = false
  if (overlays.length) {
    const { vxlan } = await import('../ops/vxlan.js')
    for (const ov of overlays) {
      const r = await tx.step(`plumb vxlan ${ov.bridge} --vni ${ov.vni} --del`, () => vxlan({ bridge: ov.bridge, vni: ov.vni, del: true }))
      changed ||= r?.changed ?? tx.dryRun
    }
  }
  const guests = present.filter((n) => isGuestNode(n) && (Object.keys(n.sysctls).length || n.names))
  if (guests.length === 0) return changed
  const [{ sysctl }, { names }] = await Promise.all([import('../ops/sysctl.js'), import('../ops/names.js')])
  for (const n of guests) {
    const guest = guestOf(n)
    if (Object.keys(n.sysctls).length) {
      const r = await tx.step(`plumb sysctl ${guest} ${Object.keys(n.sysctls).join(' ')} --del`, () => sysctl({ guest, settings: Object.keys(n.sysctls), del: true }))
      changed ||= r?.changed ?? tx.dryRun
    }
    if (n.names) {
      const r = await tx.step(`plumb names ${guest}${namesFlags(n)} --del`, () => names({ ...namesArgs(guest, n), del: true }))
      changed ||= r?.changed ?? tx.dryRun
    }
  }
  return changed
}

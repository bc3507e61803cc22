// masquerade: outbound NAT for the guests of a bridge (its IPv4 subnets) or of a CIDR, to
// everything not on that bridge (or only out of --out): MASQUERADE in PLUMB-POSTROUTING, the
// forwarded flows accepted in PLUMB-FORWARD (before Docker's FORWARD DROP), and ip_forward on.
// A Docker network's bridge is left out of "everything": plumb does not open Docker's containers
// to its guests (a RETURN sends that traffic on to Docker's own rules).

import { conflict, notFound } from '../errors.js'
import { isDockerBridge, plumbRules } from '../firewall/index.js'
import type { NewRule, Tables } from '../firewall/index.js'
import type { NetHandle } from '../kernel/types.js'
import { networkOf, parseMasqueradeSource, ruleKey, validateIfname } from '../parse/index.js'
import type { MasqueradeSource, RuleMark } from '../parse/index.js'
import { journalFor, labField, withGuest } from './context.js'
import type { CommonOptions } from './context.js'
import { editRules, sayRemoved, withIpv4Tables } from './firewall.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'

export interface MasqueradeOptions extends CommonOptions {
  /** a bridge (its IPv4 subnets) or an IPv4 CIDR */
  source: string
  /** only traffic leaving through this interface (default: everything not on the bridge / not in the CIDR) */
  out?: string
  del?: boolean
}

export interface ValidatedMasquerade {
  source: MasqueradeSource
  out?: string
  del: boolean
}

export function validateMasquerade(o: MasqueradeOptions): ValidatedMasquerade {
  return { source: parseMasqueradeSource(o.source), del: o.del ?? false, ...(o.out !== undefined ? { out: validateIfname(o.out, 'interface (--out)') } : {}) }
}

type MasqMark = Extract<RuleMark, { op: 'masquerade' }>

export async function masquerade(opts: MasqueradeOptions): Promise<OpResult> {
  const v = validateMasquerade(opts)
  const src = v.source.kind === 'bridge' ? v.source.bridge : v.source.network.cidr
  // Host-wide, like vxlan: the host is the guest the journal and recovery go by, so a rerun
  // after a kill first undoes the killed run (else a later gc would undo the rerun's same rules).
  return withGuest({ kind: 'host' }, { ...opts, allowHost: true }, async ({ netns, hostNs }) => {
    const result = emptyResult('masquerade', 'host', opts.dryRun ?? false)
    const nets = v.del ? [] : await sourceNetworks(hostNs, v.source)
    if (v.out && !(await hostNs.getLink(v.out))) throw notFound(`no interface "${v.out}" on this host (--out)`, 'ip link shows the interfaces')
    return await runTx({ ...opts, journal: journalFor('masquerade', netns) }, async (tx) => {
      await withIpv4Tables(tx.dryRun, async (tables) => {
        const mine = plumbRules(tables).filter((r) => r.mark.op === 'masquerade' && r.mark.src === src).map((r) => r.mark as MasqMark)
        if (v.del) {
          const going = mine.filter((m) => v.out === undefined || m.out === v.out)
          if (going.length === 0) {
            result.messages.push(`nothing to undo: ${src} is not masqueraded${v.out ? ` out ${v.out}` : ''}`)
            return
          }
          const keys = new Set(going.map(ruleKey))
          const done = await editRules(tx, hostNs, new Map([['iptables', tables]]), { remove: (m) => m.op === 'masquerade' && keys.has(ruleKey(m)) })
          sayRemoved(done.removed, result)
          for (const s of done.sysctls) result.messages.push(`put back ${s}`)
          result.changed = true
          return
        }
        if (v.source.kind === 'bridge' && isDockerBridge(tables, v.source.bridge)) {
          throw conflict(`${v.source.bridge} is Docker's bridge: Docker masquerades its networks itself`, 'masquerade a bridge of your own, or a CIDR')
        }
        const same = mine.find((m) => m.out === v.out)
        if (same) {
          result.messages.push(`already masqueraded: ${src}${v.out ? ` out ${v.out}` : ''}; nothing changed`)
          return
        }
        if (mine.length) {
          throw conflict(`${src} is already masqueraded ${mine[0]!.out ? `out ${mine[0]!.out}` : 'to everything'}, not ${v.out ? `out ${v.out}` : 'to everything'}`, `undo it first: plumb masquerade ${src}${mine[0]!.out ? ` --out ${mine[0]!.out}` : ''} --del`)
        }
        const mark: MasqMark = { op: 'masquerade', src, ...(v.source.kind === 'bridge' ? { bridge: v.source.bridge } : {}), ...(v.out ? { out: v.out } : {}), ...labField(opts), rec: {} }
        const done = await editRules(tx, hostNs, new Map([['iptables', tables]]), { add: masqueradeRules(mark, v.source, nets, dockerBridges(tables)) })
        result.changed = true
        result.messages.push(`masquerading ${src}${nets.length && v.source.kind === 'bridge' ? ` (${nets.join(', ')})` : ''} ${v.out ? `out ${v.out}` : 'to everything not on it'}`)
        for (const s of done.sysctls) result.messages.push(`set ${s}`)
      })
      result.plan = tx.lines
      return result
    })
  })
}

/** The bridge's IPv4 subnets (its guests' addresses), or the CIDR itself. */
async function sourceNetworks(hostNs: NetHandle, source: MasqueradeSource): Promise<string[]> {
  if (source.kind === 'cidr') return [source.network.cidr]
  const link = await hostNs.getLink(source.bridge)
  if (!link) throw notFound(`no bridge "${source.bridge}" on this host`, 'attach a guest to it first (plumb attach-veth), or give a CIDR')
  const nets = [...new Set((await hostNs.getAddrs({ index: link.index, family: 4 })).map((a) => networkOf(a.address, a.prefix)))]
  if (nets.length === 0) {
    throw notFound(`${source.bridge} has no IPv4 address: its guests have no gateway on the host to masquerade for`, `give the bridge the guests' gateway address (ip addr add 198.18.0.1/24 dev ${source.bridge}), or masquerade a CIDR`)
  }
  return nets
}

/** Docker's bridges, from its `-A FORWARD -o BR -j DOCKER` rules. */
function dockerBridges(tables: Tables): string[] {
  const out = new Set<string>()
  for (const r of tables.filter?.rules ?? []) {
    const m = r.chain === 'FORWARD' && r.target === 'DOCKER' ? /(?:^|\s)-o (\S+)/.exec(r.spec) : null
    if (m && isDockerBridge(tables, m[1]!)) out.add(m[1]!)
  }
  return [...out]
}

/** MASQUERADE per subnet, the accept of the way out and of the replies, and a RETURN for each Docker bridge. */
function masqueradeRules(mark: MasqMark, source: MasqueradeSource, nets: string[], docker: string[]): NewRule[] {
  const rules: NewRule[] = []
  const br = source.kind === 'bridge' ? source.bridge : undefined
  for (const net of nets) {
    const away = mark.out ? ['-o', mark.out] : br ? ['!', '-o', br] : ['!', '-d', net]
    rules.push({ table: 'nat', chain: 'PLUMB-POSTROUTING', match: ['-s', net, ...away], target: ['-j', 'MASQUERADE'], mark })
  }
  const from = br ? [['-i', br]] : nets.map((n) => ['-s', n])
  const to = br ? [['-o', br]] : nets.map((n) => ['-d', n])
  for (const f of from) {
    for (const d of mark.out ? [] : docker.filter((x) => x !== br)) rules.push({ table: 'filter', chain: 'PLUMB-FORWARD', match: [...f, '-o', d], target: ['-j', 'RETURN'], mark })
    const away = mark.out ? ['-o', mark.out] : br ? ['!', '-o', br] : ['!', '-d', f[1]!]
    rules.push({ table: 'filter', chain: 'PLUMB-FORWARD', match: [...f, ...away], target: ['-j', 'ACCEPT'], mark })
  }
  for (const d of to) rules.push({ table: 'filter', chain: 'PLUMB-FORWARD', match: [...(mark.out ? ['-i', mark.out] : []), ...d, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED'], target: ['-j', 'ACCEPT'], mark })
  return rules
}

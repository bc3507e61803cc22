// deploy and destroy: the plan (plan.ts) applied as one transaction of plumb's own ops. Nodes
// first (containers through the Engine API, ip netns in one `ip -batch`, bridges), then every link
// concurrently (each its op's transaction, marked with the lab's name), then repairs and exec
// lines. Anything failing part-way rolls back what this deploy made and names the node or link.

import { PlumbError, asPlumbError } from '../errors.js'
import { dockerRunLine, removeContainer, runContainer, startContainer } from '../guest/containers.js'
import type { ContainerSpec } from '../guest/containers.js'
import { netnsIdOf } from '../guest/nsfile.js'
import { openHandleIn, openHostHandle, openNetnsFd, closeFd } from '../kernel/index.js'
import { HandlePool, processHostHandle, recoverFor } from '../ops/context.js'
import { journalNotEmpty, selfIdentity } from '../ops/journal.js'
import type { Intent } from '../ops/journal.js'
import type { LinkInfo, NetHandle } from '../kernel/types.js'
import { cleanupBridges, ensureLinuxBridge } from '../ops/bridge.js'
import { ensureFirewall, plannedFirewall, readMarks } from '../ops/firewall.js'
import { ignoreGone } from '../ops/guest-config.js'
import { emptyResult } from '../ops/result.js'
import { runTx } from '../ops/tx.js'
import type { Tx } from '../ops/tx.js'
import { formatMark, parseMark } from '../parse/index.js'
import type { NatMark, RuleMark } from '../parse/index.js'
import { run } from '../proc.js'
import { applyGuestExtras, applyOverlays, labOverlays, removeExtras } from './apply-extras.js'
import { linkLines, makeLink, unlink } from './links.js'
import { applyNat, labNatMarks, namedByFile, removeLabNat } from './nat.js'
import { LABEL_LAB, LABEL_NODE, MARK_LAB, OVS_LAB_KEY, guestOf, isGuestNode, nodeByName } from './names.js'
import { observe } from './observe.js'
import type { Observed } from './observe.js'
import { describeLink, isEmptyPlan, plan } from './plan.js'
import type { Plan, Step } from './plan.js'
import { Progress, pool } from './progress.js'
import type { ProgressFn } from './progress.js'
import { execInNode } from './exec.js'
import { forgetContainer } from '../watch/store.js'
import type { Lab, LabNode } from './types.js'

export interface LabRunOptions {
  /** print what would be done (docker run / ip / plumb lines), change nothing */
  dryRun?: boolean
  /** each low-level step with its time (--verbose) */
  log?: (line: string) => void
  /** each node and link as it is done */
  onProgress?: ProgressFn
  /** links plumbed at once (default 16) */
  concurrency?: number
  /** false: the ops record nothing for replay after a container restarts (--no-persist) */
  persist?: boolean
}

export interface LabResult {
  lab: string
  file: string
  changed: boolean
  dryRun: boolean
  /** what was (or, with dryRun, would be) done, as shell lines */
  plan: string[]
  /** one line per thing done */
  messages: string[]
  /** exec lines that failed (containerlab reports them and goes on), and the like */
  warnings: string[]
  inPlace?: { nodes: number; links: number }
}

// Containers and netns nodes are made at most this many at once: dockerd does the work of each
// on the same two cores. Links are cheap (~2 ms of kernel work each) and go wider.
const NODE_CONCURRENCY = 8
const LINK_CONCURRENCY = 16

function stepName(s: Step): string {
  switch (s.kind) {
    case 'create-node':
      return `node ${s.node.name} (${s.node.kind}${s.node.kind === 'linux' || s.node.kind === 'netns' ? ` ${s.node.runtime}` : ''})`
    case 'add-link':
      return `link ${describeLink(s.link)}`
    case 'repair':
      return `${s.ep.node}:${s.ep.ifname}`
    case 'bridge-ips':
      return `bridge ${s.node.name}`
    case 'exec':
      return `exec in ${s.node.name}`
    case 'remove-link':
      return `link ${s.guest} ${s.ifname}`
    case 'remove-container':
      return `container ${s.name}`
    case 'remove-netns':
      return `netns ${s.name}`
    case 'remove-bridge':
      return `bridge ${s.name}`
    case 'remove-ovs-bridge':
      return `OVS bridge ${s.name}`
  }
}

/** Wrap a step's failure so it names the lab and the node or link (the code, so the exit code, is kept). */
function named(lab: Lab, what: string, at: string | undefined, err: unknown): PlumbError {
  const e = asPlumbError(err)
  const out = new PlumbError(e.code, `lab ${lab.name}: ${what}${at ? ` (${at})` : ''} failed: ${e.message}`, { cause: e, ...(e.hint !== undefined ? { hint: e.hint } : {}) })
  if (e.rolledBack) out.rolledBack = e.rolledBack
  return out
}

/** `ip -batch -` with these lines: one spawn for many netns adds or deletes (`childOf`: see lib/proc.ts). */
async function ipBatch(lines: string[], childOf?: string): Promise<void> {
  if (lines.length === 0) return
  const r = await run('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n`, timeout: 60_000, ...(childOf !== undefined ? { childOf } : {}) })
  if (r.exitCode !== 0) throw new PlumbError('FAILED', `ip -batch failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`)
}

/** One shared `ip -batch` for the lines given to it within one tick: each caller awaits the whole batch. */
function batcher(tx: Tx): (line: string) => Promise<void> {
  let pending: { lines: string[]; done: Promise<void> } | undefined
  return (line) => {
    if (!pending) {
      const lines: string[] = []
      const done = Promise.resolve().then(() => {
        pending = undefined
        return ipBatch(lines, tx.childOf())
      })
      pending = { lines, done }
    }
    pending.lines.push(line)
    return pending.done
  }
}

function containerSpec(lab: Lab, n: LabNode): ContainerSpec {
  return {
    name: n.runtime,
    image: n.image!,
    ...(n.cmd ? { cmd: n.cmd } : {}),
    ...(n.entrypoint ? { entrypoint: n.entrypoint } : {}),
    env: n.env,
    labels: { ...n.labels, [LABEL_LAB]: lab.name, [LABEL_NODE]: n.name },
    binds: n.binds,
    ...(n.user !== undefined ? { user: n.user } : {}),
    // containerlab names a node's host after the node
    hostname: n.name,
    networkMode: n.networkMode,
    privileged: true,
  }
}

const nodeMark = (lab: Lab, n: LabNode): string => formatMark({ v: 1, role: 'node', op: 'lab', extra: { [MARK_LAB]: lab.name, node: n.name } })

interface Ctx {
  lab: Lab
  tx: Tx
  handles: HandlePool
  hostNs: NetHandle
  nodes: Map<string, LabNode>
  seen: Observed
  progress: Progress
  netns: (line: string) => Promise<void>
  messages: string[]
  warnings: string[]
  log?: (line: string) => void
}

/**
 * A container the lab removes takes its replay record with it (what plumb recorded to re-plumb it
 * after a restart), and the p2p links other nodes' records hold to it: nothing will start again.
 */
async function removeNodeContainer(id: string): Promise<void> {
  await removeContainer(id)
  await forgetContainer('docker', id)
}

async function createNode(c: Ctx, s: Extract<Step, { kind: 'create-node' }>): Promise<void> {
  const { tx, lab } = c
  const n = s.node
  switch (n.kind) {
    case 'linux': {
      if (s.start) {
        await tx.step(`docker start ${n.runtime}`, () => startContainer(n.runtime))
        c.messages.push(`started container ${n.runtime} (node ${n.name}) again`)
        return
      }
      const spec = containerSpec(lab, n)
      await tx.step(await dockerRunLine(spec), () => runContainer(spec), { line: `docker rm -f ${n.runtime}`, run: (id) => removeNodeContainer(id) })
      c.messages.push(`started container ${n.runtime} (node ${n.name})`)
      return
    }
    case 'netns': {
      const mark = nodeMark(lab, n)
      // journaled first: killed between the add and the mark, the netns would be nobody's (a rerun
      // refuses an unmarked netns of the lab's name); recovery removes it (lib/ops/recover.ts)
      const intent: Extract<Intent, { t: 'netns' }> = { t: 'netns', name: n.runtime, mark }
      tx.intend(intent)
      await tx.step(`ip netns add ${n.runtime}`, () => c.netns(`netns add ${n.runtime}`), { line: `ip netns del ${n.runtime}`, run: () => ipBatch([`netns del ${n.runtime}`]) })
      // lo up (a netns is born with it down) and the lab's mark on it: the netns has nowhere else to hold one.
      await tx.step(`ip -n ${n.runtime} link set lo alias '${mark}' up`, async () => {
        const fd = openNetnsFd(`/run/netns/${n.runtime}`)
        try {
          // which netns this run made, before it carries the mark: killed from here on, recovery
          // removes this one only, never a later netns of the name (a rerun's) that has the mark too
          tx.amend(intent, { id: netnsIdOf(fd) })
          const h = openHandleIn(fd, `netns:${n.runtime}`)
          try {
            const lo = await h.getLink('lo')
            if (lo) await h.setLink(lo.index, { up: true, alias: mark })
          } finally {
            h.close()
          }
        } finally {
          closeFd(fd)
        }
      })
      c.messages.push(`created netns ${n.runtime} (node ${n.name})`)
      return
    }
    case 'bridge': {
      const made: { messages: string[] } = { messages: [] }
      await ensureLinuxBridge(tx, c.hostNs, n.runtime, c.seen.nodes.get(n.name)?.hostLink, made, undefined, lab.name)
      c.messages.push(...made.messages.map((m) => `${m} (node ${n.name})`))
      return
    }
    case 'ovs-bridge': {
      const ovs = await import('../ovs/index.js')
      const mark = { 'plumb-owner': 'plumb', 'plumb-op': 'lab', [OVS_LAB_KEY]: lab.name }
      await tx.step(`ovs-vsctl ${ovs.createBridgeArgv(n.runtime, { datapathType: 'auto', mark }).join(' ')}`, () => ovs.createBridge(n.runtime, { datapathType: 'auto', mark }), {
        line: `ovs-vsctl --if-exists del-br ${n.runtime}`,
        run: () => ovs.deleteBridge(n.runtime),
      })
      c.messages.push(`created OVS bridge ${n.runtime}`)
      return
    }
  }
}

async function bridgeIps(c: Ctx, node: LabNode, add: string[]): Promise<void> {
  for (const cidr of add) {
    await c.tx.step(
      `ip addr add ${cidr} dev ${node.runtime}`,
      async () => {
        const br = await c.hostNs.getLink(node.runtime)
        if (!br) throw new PlumbError('FAILED', `bridge ${node.runtime} is gone`)
        await c.hostNs.addAddr(br.index, cidr)
        return br.index
      },
      { line: `ip addr del ${cidr} dev ${node.runtime}`, run: (index) => ignoreGone(c.hostNs.delAddr(index, cidr)) },
    )
  }
  c.messages.push(`bridge ${node.runtime}: ${add.join(', ')}`)
}

async function runExec(c: Ctx, node: LabNode): Promise<void> {
  for (const command of node.exec) {
    const line = node.kind === 'linux' ? `docker exec ${node.runtime} ${command}` : `ip netns exec ${node.runtime} ${command}`
    await c.tx.step(line, async () => {
      const r = await execInNode(node, command)
      // containerlab reports a failing exec line and goes on: the lab is there, the line's effect is not.
      if (r.exitCode !== 0) c.warnings.push(`${node.at}.exec: "${command}" exited ${r.exitCode}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').slice(-1)[0]}` : ''}`)
    })
  }
}

async function removeStep(c: Ctx, s: Step): Promise<void> {
  const { tx } = c
  switch (s.kind) {
    case 'remove-link':
      await tx.step(`plumb detach ${s.guest} ${s.ifname}`, () => unlink(s.guest, s.ifname, { handles: c.handles, ...(c.log ? { log: c.log } : {}) }))
      c.messages.push(`removed ${s.guest} ${s.ifname}: ${s.why}`)
      return
    case 'remove-container':
      await tx.step(`docker rm -f ${s.name}`, () => removeNodeContainer(s.id))
      c.messages.push(`removed container ${s.name} (no longer in the file)`)
      return
    case 'remove-netns':
      await tx.step(`ip netns del ${s.name}`, async () => {
        // Its links' host ends first: they would go with the netns, but in the kernel's asynchronous
        // clean-up, a second or so after the deploy has returned (and said the lab is as the file says).
        const ends = (await labHostLinks(c.hostNs, c.lab.name)).filter((l) => parseMark(l.alias)?.guest === `netns:${s.name}`)
        await Promise.all(ends.map((l) => ignoreGone(c.hostNs.delLink(l.index))))
        await c.netns(`netns del ${s.name}`)
      })
      c.messages.push(`removed netns ${s.name} (no longer in the file)`)
      return
    case 'remove-bridge':
      await removeLinuxBridge(c.tx, c.hostNs, s.name)
      c.messages.push(`removed bridge ${s.name} (no longer in the file)`)
      return
    case 'remove-ovs-bridge': {
      const ovs = await import('../ovs/index.js')
      await tx.step(`ovs-vsctl --if-exists del-br ${s.name}`, () => ovs.deleteBridge(s.name))
      c.messages.push(`removed OVS bridge ${s.name} (no longer in the file)`)
      return
    }
    default:
      throw new Error(`not a removal: ${s.kind}`)
  }
}

async function removeLinuxBridge(tx: Tx, hostNs: NetHandle, name: string): Promise<void> {
  const { bridgeRules, removeRules } = await import('../ops/firewall.js')
  await removeRules(tx, hostNs, bridgeRules(name, true))
  await tx.step(`ip link del ${name}`, async () => {
    const br = await hostNs.getLink(name)
    if (br) await ignoreGone(hostNs.delLink(br.index))
  })
}

type FirewallPlans = Map<string, Awaited<ReturnType<typeof plannedFirewall>>>
const fwChanged = (fw: FirewallPlans): boolean => [...fw.values()].some((p) => p.rules.some((r) => !r.present))

/** The firewall rule each of the lab's Linux bridges needs where Docker's FORWARD DROP would block it (read concurrently). */
async function firewallPlans(lab: Lab): Promise<FirewallPlans> {
  const bridges = lab.nodes.filter((n) => n.kind === 'bridge')
  const plans = await Promise.all(bridges.map((b) => plannedFirewall(b.runtime)))
  return new Map(bridges.map((b, i) => [b.runtime, plans[i]!]))
}

/** The lab's `nat:` rules in place, and those of them the file no longer names. */
interface NatState {
  all: RuleMark[]
  stale: NatMark[]
}

/**
 * Finish what a killed plumb left on the host first (its journal entries naming the host, a
 * killed deploy's among them): a rerun of a deploy killed between making a netns node and marking
 * it then converges instead of refusing the lab's own name.
 */
async function recoverHost(opts: LabRunOptions): Promise<string[]> {
  return recoverFor(processHostHandle(), selfIdentity().hostNs, opts)
}

export async function deploy(lab: Lab, opts: LabRunOptions = {}): Promise<LabResult> {
  const recovered = await recoverHost(opts)
  const [seen, fw, { marks }] = await Promise.all([observe(lab, { recover: { ...(opts.dryRun ? { dryRun: true } : {}) } }), firewallPlans(lab), readMarks(['iptables'])])
  if (!opts.dryRun) await refuseClaimedNodes(lab, seen, [...recovered, ...seen.recovered])
  const p = plan(lab, seen)
  const fwMissing = fwChanged(fw)
  const named = namedByFile(lab, nodeByName(lab))
  const nat: NatState = { all: marks, stale: labNatMarks(marks, lab.name).filter((m) => !named(m)) }
  const result: LabResult = { lab: lab.name, file: lab.file, changed: false, dryRun: opts.dryRun ?? false, plan: [], messages: [], warnings: [], inPlace: p.inPlace }
  result.warnings.push(...recovered, ...seen.recovered)
  // Sysctls, names, overlays and NAT are their ops' to compare: a lab with any goes through them (a rerun changes nothing).
  const extras = lab.links.some((l) => l.kind === 'vxlan') || lab.nodes.some((n) => n.names || Object.keys(n.sysctls).length) || hasNat(lab) || nat.stale.length > 0
  if (isEmptyPlan(p) && !fwMissing && !extras) return alreadyDeployed(result, p)
  return applyPlan(lab, p, seen, fw, nat, opts, result)
}

/**
 * A netns node of the lab that a killed plumb's unfinished entry still names (its recovery just
 * failed: `recovered`, the host's and the nodes' recovery lines, says why) is that run's, not
 * this deploy's to go on with: the gc that finishes the entry deletes it. A dry run skips this:
 * the real run's recovery may finish it.
 */
async function refuseClaimedNodes(lab: Lab, seen: Observed, recovered: string[]): Promise<void> {
  if (!journalNotEmpty()) return
  const kept = [...seen.nodes.values()].filter((o) => o.node.kind === 'netns' && o.exists && o.ours)
  if (kept.length === 0) return
  const { deadClaimsOn } = await import('../ops/recover.js')
  const claims = deadClaimsOn(kept.map((o) => o.node.runtime))
  for (const o of kept) {
    const e = claims.get(o.node.runtime)
    if (!e) continue
    const why = recovered.find((l) => l.includes(`of pid ${e.pid} (killed)`))
    throw new PlumbError('FAILED', `lab ${lab.name}: node ${o.node.name} (${o.node.at}): netns ${o.node.runtime} is still the unfinished work of a killed plumb (${e.op}, pid ${e.pid})${why ? `: ${why.replace(/^could not finish an interrupted plumb: /, '')}` : ''}`, {
      hint: `plumb gc finishes it once it can (and says why not); plumb lab destroy ${lab.file} removes the node, and the next deploy makes it anew`,
    })
  }
}

function alreadyDeployed(result: LabResult, p: Plan): LabResult {
  result.changed = false
  result.plan = []
  result.messages.splice(0, result.messages.length, `lab ${result.lab}: already deployed (${p.inPlace.nodes} nodes, ${p.inPlace.links} links in place); nothing changed`)
  return result
}

async function applyPlan(lab: Lab, p: Plan, seen: Observed, fw: FirewallPlans, nat: NatState, opts: LabRunOptions, result: LabResult): Promise<LabResult> {
  const nodes = nodeByName(lab)
  const total = p.removals.length + p.nodes.flat().length + p.links.length + p.repairs.length + p.after.length
  const handles = new HandlePool()
  const hostNs = handles.host()
  try {
    return await runTx({ ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.log ? { log: opts.log } : {}), journal: { op: 'lab deploy', guests: [selfIdentity().hostNs] } }, async (tx) => {
      const c: Ctx = { lab, tx, handles, hostNs, nodes, seen, progress: new Progress(total, opts.onProgress), netns: batcher(tx), messages: result.messages, warnings: result.warnings, ...(opts.log ? { log: opts.log } : {}) }
      const at = (s: Step): string | undefined => (s.kind === 'create-node' || s.kind === 'bridge-ips' || s.kind === 'exec' ? s.node.at : s.kind === 'add-link' ? s.link.at : s.kind === 'repair' ? s.ep.at : undefined)
      const each = (steps: Step[], limit: number, outcome: string, fn: (s: Step) => Promise<void>): Promise<void> =>
        pool(steps, limit, async (s) => {
          const what = stepName(s)
          try {
            await c.progress.step(what, outcome, () => fn(s))
          } catch (err) {
            throw named(lab, what, at(s), err)
          }
        })

      await each(p.removals, NODE_CONCURRENCY, 'removed', (s) => removeStep(c, s))
      for (const wave of p.nodes) {
        const created = (s: Step): Promise<void> => createNode(c, s as Extract<Step, { kind: 'create-node' }>)
        // Containers are dockerd's work, a few at once; every ip netns of the wave goes into one `ip -batch`.
        await Promise.all([
          each(wave.filter((s) => s.kind === 'create-node' && s.node.kind === 'linux'), NODE_CONCURRENCY, 'created', created),
          each(wave.filter((s) => s.kind === 'create-node' && s.node.kind !== 'linux'), wave.length, 'created', created),
        ])
      }
      const extraMessages: string[] = []
      // The lab's NAT rules the file no longer names, by their ops' --del: before the file's own are
      // applied (a host port given to another guest port, a masquerade given another --out, would
      // otherwise be refused as a different configuration in place, exit 4), and after the nodes
      // are up (a container this deploy started again can be named; one it removed cannot, and its
      // rules go by their marks).
      await removeLabNat(tx, hostNs, lab.name, nat.stale, nat.all, { undo: true, messages: extraMessages, why: 'no longer in the file' })
      // Docker's FORWARD DROP: one ACCEPT rule per lab bridge (attach-veth's own check is off for the lab's
      // links), inserted while the links are made: a frame bridged a moment before it is only dropped.
      const firewall = (async () => {
        for (const [bridge, p] of fw) await ensureFirewall(tx, p, bridge, result)
      })()
      // Overlays before the links: the bridge takes the overlay's MTU, and so the guests attached to it.
      await applyOverlays(tx, lab, nodes, { messages: extraMessages, ...(opts.log ? { log: opts.log } : {}) })
      firewall.catch(() => undefined) // awaited after the links
      try {
        if (tx.dryRun) {
          // The links' ops cannot plan against nodes that do not exist yet: their plumb lines are the plan.
          for (const s of p.links) if (s.kind === 'add-link') for (const l of linkLines(s.link, nodes)) tx.lines.push(l)
        } else {
          await each(p.links, opts.concurrency ?? LINK_CONCURRENCY, 'linked', async (s) => {
            const l = (s as Extract<Step, { kind: 'add-link' }>).link
            const g = l.kind === 'vxlan' ? undefined : guestOf(nodes.get(l.a.node)!)
            await tx.step(linkLines(l, nodes).join(' && '), () => makeLink(l, nodes, { lab: lab.name, handles, ...(opts.persist === false ? { persist: false } : {}), ...(opts.log ? { log: opts.log } : {}) }), {
              line: `plumb detach ${g} ${l.kind === 'vxlan' ? '' : l.a.ifname}`,
              run: () => (l.kind === 'vxlan' ? Promise.resolve() : unlink(g!, l.a.ifname, { handles })),
            })
            result.messages.push(`linked ${describeLink(l)}`)
          })
        }
      } catch (err) {
        // The rule's undo must be registered before the rollback runs: the link's error is the one to report.
        await firewall.catch(() => undefined)
        throw err
      }
      await firewall
      await each(p.repairs, LINK_CONCURRENCY, 'repaired', async (s) => {
        if (s.kind === 'bridge-ips') return bridgeIps(c, s.node, s.add)
        if (s.kind !== 'repair') return
        const { setIp } = await import('../ops/set-ip.js')
        const common = { lab: lab.name, handles, ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.persist === false ? { persist: false } : {}), ...(opts.log ? { log: opts.log } : {}) }
        if (s.del.length) {
          await tx.step(`plumb set-ip ${s.guest} ${s.ep.ifname} ${s.del.join(' ')} --del`, () => setIp({ ...common, guest: s.guest, ifname: s.ep.ifname, ips: s.del, del: true }), {
            line: `plumb set-ip ${s.guest} ${s.ep.ifname} ${s.del.join(' ')}`,
            run: () => setIp({ ...common, guest: s.guest, ifname: s.ep.ifname, ips: s.del }),
          })
        }
        if (s.add.length || s.routes.length) {
          await tx.step(`plumb set-ip ${s.guest} ${s.ep.ifname} ${s.add.join(' ')}${s.routes.map((r) => ` --route ${r}`).join('')} --replace-gateway`, () => setIp({ ...common, guest: s.guest, ifname: s.ep.ifname, ips: s.add, routes: s.routes, replaceGateway: true }), {
            line: `plumb set-ip ${s.guest} ${s.ep.ifname} ${s.add.join(' ')} --del`,
            run: () => (s.add.length ? setIp({ ...common, guest: s.guest, ifname: s.ep.ifname, ips: s.add, del: true }) : Promise.resolve()),
          })
        }
        result.messages.push(`repaired ${s.ep.node}:${s.ep.ifname}:${s.add.length ? ` added ${s.add.join(', ')}` : ''}${s.routes.length ? ` routes ${s.routes.join(', ')}` : ''}${s.del.length ? ` removed ${s.del.join(', ')}` : ''}`)
      })
      await applyGuestExtras(tx, lab, { messages: extraMessages, ...(opts.persist === false ? { persist: false } : {}), ...(opts.log ? { log: opts.log } : {}) })
      await applyNat(tx, lab, nodes, { messages: extraMessages, ...(opts.persist === false ? { persist: false } : {}), ...(opts.log ? { log: opts.log } : {}) })
      await each(p.after, NODE_CONCURRENCY, 'ran', (s) => runExec(c, (s as Extract<Step, { kind: 'exec' }>).node))
      const repaired = p.repairs.filter((s) => s.kind === 'repair').length
      if (total === 0 && extraMessages.length === 0 && !fwChanged(fw) && !tx.dryRun) return alreadyDeployed(result, p)
      result.changed = true
      result.plan = tx.lines
      result.messages.push(...extraMessages)
      result.messages.unshift(`lab ${lab.name}: ${tx.dryRun ? 'would deploy' : 'deployed'} (${p.nodes.flat().length} nodes made, ${p.links.length} links made, ${repaired} repaired, ${p.removals.length} removed; ${p.inPlace.nodes} nodes and ${p.inPlace.links} links were in place)`)
      return result
    })
  } catch (err) {
    throw asPlumbError(err)
  } finally {
    // after the rollback (which may use them): the run's handles, the host's among them
    handles.close()
  }
}

/** The host links a lab made (host ends of its links, its bridges, its VXLAN ports) that the kernel still has. */
async function labHostLinks(hostNs: NetHandle, lab: string): Promise<LinkInfo[]> {
  return (await hostNs.getLinks()).filter((l) => parseMark(l.alias)?.extra?.[MARK_LAB] === lab)
}

/**
 * Remove everything the lab made: its containers and netns (their links go with them), the
 * lab's links in containers it did not start (`container:`), its OVS rows and bridges, its
 * Linux bridges and their firewall rules. Idempotent: nothing there, nothing done.
 */
export async function destroy(lab: Lab, opts: LabRunOptions = {}): Promise<LabResult> {
  const recovered = await recoverHost(opts)
  const seen = await observe(lab, { strict: false, recover: { ...(opts.dryRun ? { dryRun: true } : {}) } })
  const result: LabResult = { lab: lab.name, file: lab.file, changed: false, dryRun: opts.dryRun ?? false, plan: [], messages: [], warnings: [...recovered, ...seen.recovered] }
  const hostNs = openHostHandle()
  try {
    const leases = await (await import('../dhcp/index.js')).listLeases()
    // Links that must go one by one: those in guests the lab did not make, and those with a DHCP client to stop.
    const unlinks: Array<{ guest: string; ifname: string }> = []
    const removeNodes: LabNode[] = []
    for (const o of seen.nodes.values()) {
      if (!isGuestNode(o.node) || !o.exists) continue
      if (o.ours) removeNodes.push(o.node)
      for (const l of o.state?.links ?? []) {
        const m = parseMark(l.alias)
        if (!m || (m.role !== 'guest' && m.role !== 'moved') || m.extra?.[MARK_LAB] !== lab.name) continue
        const leased = leases.some((x) => x.stateKey === o.state!.key && x.ifname === l.name)
        if (!o.ours || leased) unlinks.push({ guest: guestOf(o.node), ifname: l.name })
      }
    }
    const ovs = seen.ovs ? await import('../ovs/index.js') : undefined
    const labPorts = ovs ? (await ovs.listPlumbPorts()).filter((x) => x.externalIds[OVS_LAB_KEY] === lab.name) : []
    const ovsBridges = [...[...seen.ovsBridges].filter(([, v]) => v.ours).map(([k]) => k), ...seen.strayOvsBridges]
    const linuxBridges = [...lab.nodes.filter((n) => n.kind === 'bridge' && seen.nodes.get(n.name)?.ours).map((n) => n.runtime), ...seen.strayBridges]
    // A bridge the lab did not make stays, with its addresses; only plumb's firewall rule for it
    // goes, once no plumb port is left on it (as detach does). So does the rule of a bridge node
    // that is gone (deleted by hand): it serves nothing now.
    const { marks } = await readMarks()
    const ruleBridges = new Set(marks.flatMap((m) => (m.op === 'bridge' ? [m.bridge] : [])))
    // Every rule the lab's `nat:` made, whether or not the file still names it (and none it did not make).
    const nat = labNatMarks(marks, lab.name)
    const foreignBridges = lab.nodes.filter((n) => n.kind === 'bridge' && !seen.nodes.get(n.name)?.ours && ruleBridges.has(n.runtime))
    const containers = [...removeNodes.filter((n) => n.kind === 'linux').map((n) => seen.nodes.get(n.name)!.container!), ...seen.strayContainers]
    const netns = [...removeNodes.filter((n) => n.kind === 'netns').map((n) => n.runtime), ...seen.strayNetns]
    const hostLeft = await labHostLinks(hostNs, lab.name)
    const overlays = labOverlays(seen.hostLinks, lab.name)
    const withExtras = [...seen.nodes.values()].filter((o) => o.exists && (o.node.names || Object.keys(o.node.sysctls).length)).map((o) => o.node)
    if (unlinks.length + labPorts.length + ovsBridges.length + linuxBridges.length + containers.length + netns.length + hostLeft.length + foreignBridges.length + overlays.length + withExtras.length + nat.length === 0) {
      result.messages.push(`lab ${lab.name}: nothing to destroy (nothing of it is here)`)
      return result
    }
    const total = unlinks.length + containers.length + netns.length + ovsBridges.length + linuxBridges.length
    const progress = new Progress(total, opts.onProgress)
    return await runTx({ ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.log ? { log: opts.log } : {}) }, async (tx) => {
      const step = (what: string, line: string, fn: () => Promise<unknown>): Promise<unknown> => progress.step(what, 'removed', () => tx.step(line, fn))
      // NAT, overlays, sysctls and names first, by their ops' --del, while the guests they name are
      // there: a netns node's /etc/netns files outlive it otherwise, a container's record keeps its ports.
      const natSaid: string[] = []
      const natChanged = await removeLabNat(tx, hostNs, lab.name, nat, marks, { undo: false, messages: natSaid, why: 'the lab made it' })
      const extrasChanged = (await removeExtras(tx, lab, withExtras, overlays)) || natChanged
      if (unlinks.length + labPorts.length + ovsBridges.length + linuxBridges.length + containers.length + netns.length + hostLeft.length + foreignBridges.length === 0 && !extrasChanged) {
        result.messages.push(`lab ${lab.name}: nothing to destroy (nothing of it is here)`)
        return result
      }
      result.messages.push(...natSaid)
      await pool(unlinks, LINK_CONCURRENCY, (u) => step(`link ${u.guest} ${u.ifname}`, `plumb detach ${u.guest} ${u.ifname}`, () => unlink(u.guest, u.ifname)))
      const netnsBatch = batcher(tx)
      await Promise.all([
        pool(containers, NODE_CONCURRENCY, (ct) => step(`container ${ct.name}`, `docker rm -f ${ct.name}`, () => removeNodeContainer(ct.id))),
        pool(netns, netns.length || 1, (n) => step(`netns ${n}`, `ip netns del ${n}`, () => netnsBatch(`netns del ${n}`))),
      ])
      for (const port of labPorts) {
        if (ovsBridges.includes(port.bridge)) continue // del-br takes its ports
        await tx.step(`ovs-vsctl --if-exists del-port ${port.name}`, () => ovs!.delPort(port.name))
      }
      for (const b of ovsBridges) await step(`OVS bridge ${b}`, `ovs-vsctl --if-exists del-br ${b}`, () => ovs!.deleteBridge(b))
      for (const b of linuxBridges) await progress.step(`bridge ${b}`, 'removed', () => removeLinuxBridge(tx, hostNs, b))
      const ruleSaid = emptyResult('lab destroy', lab.name, tx.dryRun)
      await cleanupBridges(tx, hostNs, foreignBridges.map((b) => b.runtime), ruleSaid)
      result.messages.push(...ruleSaid.messages)
      if (!tx.dryRun) {
        // The host ends of the links into the nodes just removed go with their peers in the kernel's
        // asynchronous netns clean-up (~0.25 s for 20 here): wait for it a moment, then delete what
        // is left one by one (~17 ms each). A netns another mount namespace still holds (one made by
        // `ip netns exec` keeps a container's) is not cleaned up while it does.
        const deadline = Date.now() + 1000
        let left = await labHostLinks(hostNs, lab.name)
        while (left.length && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20))
          left = await labHostLinks(hostNs, lab.name)
        }
        await pool(left, LINK_CONCURRENCY, (l) => tx.step(`ip link del ${l.name}`, () => ignoreGone(hostNs.delLink(l.index))))
        left = await labHostLinks(hostNs, lab.name)
        if (left.length) result.warnings.push(`host links of the lab still there: ${left.map((l) => l.name).join(' ')}`)
      }
      result.changed = true
      result.plan = tx.lines
      result.messages.unshift(`lab ${lab.name}: ${tx.dryRun ? 'would destroy' : 'destroyed'} (${containers.length} containers, ${netns.length} netns, ${linuxBridges.length + ovsBridges.length} bridges, ${unlinks.length} links one by one)`)
      return result
    })
  } finally {
    hostNs.close()
  }
}

/** The file has a `nat:` section: its ops run on every deploy (each says when nothing changed). */
const hasNat = (lab: Lab): boolean => lab.nat.expose.length + lab.nat.masquerade.length + lab.nat.isolate.length > 0

// plumb as a CNI plugin: env + stdin -> the same ops as the CLI -> a CNI result in the version
// the config asked for. ADD is one transaction (record, IPAM ADD, the op, publishing ports):
// a failure at any step undoes the ones before it, IPAM's reservation included. DEL finds what
// to remove by the attachment's marks, so it works with the netns gone or CNI_NETNS empty.

import { PlumbError } from '../errors.js'
import { netnsAt } from '../guest/nsfile.js'
import type { GuestRef } from '../parse/index.js'
import type { OpResult } from '../ops/result.js'
import { runTx } from '../ops/tx.js'
import { attachmentTags, checkAttachment, removeAttachment, sameNetns } from './attachment.js'
import type { AttachmentId } from './attachment.js'
import { COMMANDS, SUPPORTED_VERSIONS, decodeConfig, parseEnv, parseNetConf } from './config.js'
import type { CniEnv, NetConf, PortMapping } from './config.js'
import { CNI_CODES, CniError, PLUMB_CODE_BASE, asCniError } from './errors.js'
import { delegateFor, delegateKnows, invoke } from './ipam.js'
import { listRecords, readRecord, removeDeadRecordTemps, removeRecord, writeRecord } from './records.js'
import type { NetnsIdentity } from './records.js'
import { composeResult, dnsOf, formatResult, ipamToSpecs, parseResult } from './result.js'
import type { CniResult } from './result.js'

/** What the plugin was asked: the CNI_* variables and stdin's text. */
export interface CniRequest {
  env: Record<string, string | undefined>
  /** the network config (not read for VERSION) */
  stdin?: string
  /** where step lines go when the config says `verbose` (default: nowhere) */
  log?: (line: string) => void
}

/** `expose`'s shape: publish (or with `del`, unpublish) Docker-style PORTSPECs of a guest. */
export type ExposeFn = (o: { guest: string | GuestRef; ports: string[]; del?: boolean }) => Promise<unknown>

/** The `expose` op, for the `portMappings` capability. */
async function exposeOp(): Promise<ExposeFn> {
  return (await import('../ops/expose.js')).expose
}

/** Docker's PORTSPEC for a CNI port mapping: `[HOSTIP:]HOSTPORT:PORT/PROTO`. */
export function portSpec(m: PortMapping): string {
  const host = m.hostIP ? `${m.hostIP.includes(':') ? `[${m.hostIP}]` : m.hostIP}:` : ''
  return `${host}${m.hostPort}:${m.containerPort}/${m.protocol}`
}

/**
 * Run one CNI command. Resolves to what goes to stdout (undefined: nothing, as for DEL); rejects
 * with a CniError, which the caller prints as the spec's error object.
 */
export async function runCni(req: CniRequest): Promise<Record<string, unknown> | undefined> {
  const env = parseEnv(req.env)
  if (env.command === 'VERSION') return { cniVersion: SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1], supportedVersions: [...SUPPORTED_VERSIONS] }
  const conf = parseNetConf(decodeConfig(req.stdin ?? ''), env.command)
  const log = conf.verbose ? req.log : undefined
  switch (env.command) {
    case 'ADD':
      return formatResult(await add(env, conf, log), conf.cniVersion)
    case 'DEL':
      await del(env, conf, log)
      return undefined
    case 'CHECK':
      await check(env, conf)
      return undefined
    case 'GC':
      await gc(env, conf, log)
      return undefined
    case 'STATUS':
      await status(env, conf)
      return undefined
  }
}

const idOf = (env: CniEnv): AttachmentId => ({ containerId: env.containerId!, ifname: env.ifname! })

/** The op's options from the config: everything but the addresses, which IPAM decides. */
function opOptions(conf: NetConf, env: CniEnv, log?: (line: string) => void) {
  const op = conf.op
  const mac = conf.runtimeConfig.mac ?? ('mac' in op ? op.mac : undefined)
  return {
    guest: { kind: 'path', path: env.netns! } as GuestRef,
    // the runtime re-attaches on restart (another ADD): nothing for plumb's replay to record
    persist: false,
    ifname: conf.ifname ?? env.ifname!,
    tags: attachmentTags(idOf(env)),
    ...(mac !== undefined ? { mac } : {}),
    ...('mtu' in op && op.mtu !== undefined ? { mtu: op.mtu } : {}),
    ...(log ? { log } : {}),
  }
}

/** Validate the op's input exactly as the op will, before IPAM hands out an address. */
async function validateOp(conf: NetConf, o: ReturnType<typeof opOptions>, ips: string[], routes: string[]): Promise<() => Promise<OpResult>> {
  const op = conf.op
  const base = { ...o, ips, routes }
  switch (op.op) {
    case 'attach-veth': {
      const m = await import('../ops/attach-veth.js')
      const opts = { ...base, bridge: op.bridge, ...(op.firewall !== undefined ? { firewall: op.firewall } : {}) }
      m.validateAttachVeth(opts)
      return () => m.attachVeth(opts)
    }
    case 'ovs-port': {
      const m = await import('../ops/ovs-port.js')
      const opts = { ...base, bridge: op.bridge, ...(op.tag !== undefined ? { tag: op.tag } : {}), ...(op.trunks ? { trunks: op.trunks } : {}), ...(op.createBridge ? { createBridge: true } : {}) }
      m.validateOvsPort(opts)
      return () => m.ovsPort(opts)
    }
    case 'macvlan': {
      const m = await import('../ops/macvlan.js')
      const opts = { ...base, parent: op.parent, ...(op.mode ? { mode: op.mode } : {}) }
      m.validateMacvlan(opts)
      return () => m.macvlan(opts)
    }
    case 'vlan': {
      const m = await import('../ops/vlan.js')
      const opts = { ...base, parent: op.parent, vid: op.vid }
      m.validateVlan(opts)
      return () => m.vlan(opts)
    }
    case 'move-dev': {
      const m = await import('../ops/move-dev.js')
      const opts = { ...base, device: op.device }
      m.validateMoveDev(opts)
      return () => m.moveDev(opts)
    }
  }
}

/**
 * The netns file's identity (its inode, and its cookie: a later netns may get the inode again, never
 * the cookie), or error 3: the container's netns is not there.
 */
function netnsIdentity(path: string): NetnsIdentity {
  const ns = netnsAt(path)
  if (!ns) throw new CniError(CNI_CODES.UNKNOWN_CONTAINER, `no network namespace at CNI_NETNS ${path}`, 'the container is gone, or the runtime passed a path this process cannot see (or one that is not a network namespace)')
  return { nsDev: ns.dev, nsIno: ns.ino, ...(ns.cookie === undefined ? {} : { nsCookie: ns.cookie }) }
}

async function add(env: CniEnv, conf: NetConf, log?: (line: string) => void): Promise<CniResult> {
  const id = idOf(env)
  const netns = env.netns!
  const prev = conf.prevResult !== undefined ? parseResult(conf.prevResult, 'prevResult') : undefined
  const o = opOptions(conf, env, log)
  // Everything is checked before the first change: the op's input (with the `ips` capability's
  // addresses, or a stand-in for IPAM's), the ports, the netns.
  const staticIps = conf.ipam ? [] : conf.runtimeConfig.ips
  await validateOp(conf, o, staticIps, [])
  const ports = conf.runtimeConfig.portMappings.map(portSpec)
  // an IPv6 hostIP is refused here, before anything is touched (plumb publishes IPv4)
  if (ports.length) (await import('../parse/index.js')).parsePortSpecs(ports)
  const expose = ports.length ? await exposeOp() : undefined
  const nsId = netnsIdentity(netns)
  const ipam = conf.ipam ? await delegateFor(conf.ipam.type, env.path) : undefined
  // attach-veth's reads that need no address are started right after IPAM's, to run beside it.
  const prefetch = conf.op.op === 'attach-veth' ? await attachPrefetch(conf.op, conf.ipam) : () => undefined

  return runTx({ ...(log ? { log } : {}) }, async (tx) => {
    await tx.step(`# record ${conf.dataDir}/${conf.name}/${id.containerId}:${id.ifname}`, async () =>
      writeRecord(conf.dataDir, conf.name, { v: 1, containerId: id.containerId, ifname: id.ifname, op: conf.op.op, netns, ...nsId, ...(ipam ? { ipam: ipam.type } : {}), at: Date.now() }),
    { line: `# remove the record`, run: async () => removeRecord(conf.dataDir, conf.name, id.containerId, id.ifname) })
    let fromIpam: CniResult | undefined
    if (ipam) {
      const adding = tx.step(`# ${ipam.type} ADD (CNI ${ipam.version})`, () => invoke(ipam, 'ADD', conf.raw), {
        line: `# ${ipam.type} DEL`,
        run: () => invoke(ipam, 'DEL', conf.raw),
      })
      // on the next turn of the event loop, once IPAM's spawn is under way: the prefetch's reads
      // hold the main thread (each answered in the call that sends it), and the spawn goes first
      setImmediate(prefetch)
      fromIpam = await adding
    } else {
      prefetch()
    }
    const specs = fromIpam && !tx.dryRun ? ipamToSpecs(fromIpam) : { ips: staticIps, routes: [] }
    const runOp = await validateOp(conf, o, specs.ips, specs.routes)
    const opResult = await tx.step(`# plumb ${conf.op.op} ${netns} ${o.ifname}`, runOp, {
      line: `# remove ${conf.op.op} ${o.ifname} of ${id.containerId}`,
      run: () => removeAttachment(id, { netns, op: conf.op, made: true, ...(log ? { log } : {}) }),
    })
    if (expose) {
      await tx.step(`# plumb expose ${netns} ${ports.join(' ')}`, () => expose({ guest: o.guest, ports }), {
        line: `# plumb expose ${netns} ${ports.join(' ')} --del`,
        run: () => expose({ guest: o.guest, ports, del: true }),
      })
    }
    return composeResult(prev, opResult, { netns, ...(fromIpam ? { ipam: fromIpam } : { staticIps }), dns: dnsOf(conf.dns) })
  })
}

/**
 * What an attach-veth reads before it changes anything that does not depend on its addresses: the
 * firewall (an iptables spawn, unless `firewall: false`) and its bridge's segment (the guests'
 * addresses, one dump each: lib/ops/segment.ts), read into this process's caches while IPAM runs.
 */
async function attachPrefetch(op: { bridge: string; firewall?: boolean }, ipam: NetConf['ipam']): Promise<() => void> {
  const [{ prefetchFirewall }, { prefetchSegment }, { processHostHandle }] = await Promise.all([import('../ops/firewall.js'), import('../ops/segment.js'), import('../ops/context.js')])
  return () => {
    if (op.firewall !== false) prefetchFirewall(op.bridge)
    prefetchSegment(processHostHandle(), op.bridge, ipamFamilies(ipam))
  }
}

/**
 * The address families an IPAM section will likely hand out, from host-local's `ranges` (or its
 * older `subnet`); IPv4 when it says none. A guess for the prefetch only: the op reads the
 * segment for whatever families it is given.
 */
export function ipamFamilies(ipam: NetConf['ipam']): Array<4 | 6> {
  const subnets: unknown[] = [ipam?.subnet, ...(Array.isArray(ipam?.ranges) ? ipam.ranges.flatMap((set: unknown) => (Array.isArray(set) ? set.map((r: unknown) => (r as { subnet?: unknown } | null)?.subnet) : [])) : [])]
  const families = new Set(subnets.filter((x): x is string => typeof x === 'string').map((x) => (x.includes(':') ? 6 : 4) as 4 | 6))
  return families.size ? [...families].sort() : [4]
}

/**
 * DEL: everything of the attachment, wherever it is; succeeds when repeated, when the netns is
 * gone and when CNI_NETNS is empty (the record says where the netns was, if it still is). The
 * IPAM DEL always runs: releasing an address that is already free is IPAM's no-op.
 */
async function del(env: CniEnv, conf: NetConf, log?: (line: string) => void): Promise<void> {
  const id = idOf(env)
  const rec = readRecord(conf.dataDir, conf.name, id.containerId, id.ifname)
  const netns = env.netns ?? (rec && sameNetns(rec.netns, rec) ? rec.netns : undefined)
  await removeAttachment(id, { ...(netns ? { netns } : {}), op: conf.op, made: rec !== undefined, ...(log ? { log } : {}) })
  const ports = conf.runtimeConfig.portMappings.map(portSpec)
  const expose = ports.length && netns ? await exposeOp() : undefined
  if (expose) await expose({ guest: { kind: 'path', path: netns! }, ports, del: true })
  if (conf.ipam) await invoke(await delegateFor(conf.ipam.type, env.path), 'DEL', conf.raw)
  removeRecord(conf.dataDir, conf.name, id.containerId, id.ifname)
}

/** CHECK: IPAM's reservation first (its own CHECK), then the links (see checkAttachment). */
async function check(env: CniEnv, conf: NetConf): Promise<void> {
  if (conf.prevResult === undefined) throw new CniError(CNI_CODES.INVALID_CONFIG, 'CHECK needs prevResult', 'the runtime passes the result of the ADD as prevResult')
  const prev = parseResult(conf.prevResult, 'prevResult')
  if (conf.ipam) {
    const ipam = await delegateFor(conf.ipam.type, env.path)
    if (delegateKnows(ipam, 'CHECK')) await invoke(ipam, 'CHECK', conf.raw)
  }
  netnsIdentity(env.netns!)
  await checkAttachment(idOf(env), { netns: env.netns!, op: conf.op, prev })
}

/**
 * GC: every attachment of this network whose record the runtime's list does not name is
 * removed, and its address released: by IPAM's own GC when it speaks 1.1.0, else one IPAM DEL
 * each (Debian's host-local stops at 1.0.0). Best effort: all are tried, the failures reported.
 */
async function gc(env: CniEnv, conf: NetConf, log?: (line: string) => void): Promise<void> {
  const valid = new Set(conf.validAttachments!.map((a) => `${a.containerID}:${a.ifname}`))
  const stale = listRecords(conf.dataDir, conf.name).filter((r) => !valid.has(`${r.containerId}:${r.ifname}`))
  const ipam = conf.ipam ? await delegateFor(conf.ipam.type, env.path) : undefined
  const failed: string[] = []
  for (const r of stale) {
    const id = { containerId: r.containerId, ifname: r.ifname }
    try {
      await removeAttachment(id, { ...(sameNetns(r.netns, r) ? { netns: r.netns } : {}), op: conf.op, made: true, ...(log ? { log } : {}) })
      if (ipam && !delegateKnows(ipam, 'GC')) await invoke(ipam, 'DEL', conf.raw, { CNI_CONTAINERID: r.containerId, CNI_IFNAME: r.ifname, CNI_NETNS: '' })
      removeRecord(conf.dataDir, conf.name, r.containerId, r.ifname)
    } catch (err) {
      failed.push(`${r.containerId}:${r.ifname}: ${asCniError(err).message}`)
    }
  }
  if (ipam && delegateKnows(ipam, 'GC')) await invoke(ipam, 'GC', conf.raw)
  removeDeadRecordTemps(conf.dataDir, conf.name)
  if (failed.length) throw new CniError(PLUMB_CODE_BASE + 1, `GC could not remove ${failed.length} of ${stale.length} stale attachment(s)`, failed.join('; '))
}

/** STATUS: can an ADD work now? The kernel handle, what the op needs on the host, the IPAM plugin. */
async function status(env: CniEnv, conf: NetConf): Promise<void> {
  const notAvailable = (msg: string, details = ''): CniError => new CniError(CNI_CODES.NOT_AVAILABLE, msg, details)
  const { openHostHandle } = await import('../kernel/index.js')
  let host
  try {
    host = openHostHandle()
  } catch (err) {
    throw notAvailable(`cannot open a netlink socket: ${asCniError(err).message}`, 'plumb needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)')
  }
  try {
    const op = conf.op
    if (op.op === 'ovs-port') {
      const ovs = await import('../ovs/index.js')
      const up = await ovs.ovsAvailable()
      if (!up.ok) throw notAvailable(`Open vSwitch does not answer: ${up.reason ?? 'no ovsdb-server'}`, ovs.START_HINT)
    }
    const parent = op.op === 'macvlan' || op.op === 'vlan' ? op.parent : undefined
    if (parent && !(await host.getLink(parent))) {
      const ovs = op.op === 'vlan' ? await import('../ovs/index.js') : undefined
      if (!(ovs && (await ovs.isOvsBridge(parent).catch(() => false)))) throw notAvailable(`the parent interface ${parent} is not on this host`)
    }
  } finally {
    host.close()
  }
  if (conf.ipam) {
    let ipam
    try {
      ipam = await delegateFor(conf.ipam.type, env.path)
    } catch (err) {
      throw notAvailable(asCniError(err).message, asCniError(err).details)
    }
    if (delegateKnows(ipam, 'STATUS')) await invoke(ipam, 'STATUS', conf.raw)
  }
}

/** The error object's cniVersion: the config's when it can be read, else the newest. */
function errorVersion(stdin: string | undefined): string {
  try {
    const v = (JSON.parse(stdin ?? '') as { cniVersion?: unknown }).cniVersion
    if (typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v)) return v
  } catch {
    // not JSON: the error says so
  }
  return SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1]!
}

export interface CniIo {
  out(text: string): void
  err(text: string): void
}

/**
 * The executable's CNI face (dist/plumb.cjs with CNI_COMMAND set): the result or the error
 * object on stdout, logs on stderr only; exit 0, or 1 with the error object.
 */
export async function cniMain(env: Record<string, string | undefined>, readStdin: () => string, io: CniIo): Promise<number> {
  let stdin: string | undefined
  try {
    // VERSION takes no config (skel does not read stdin for it either).
    stdin = env.CNI_COMMAND === 'VERSION' || !(COMMANDS as readonly string[]).includes(env.CNI_COMMAND ?? '') ? undefined : readStdin()
    const out = await runCni({ env, ...(stdin !== undefined ? { stdin } : {}), log: (line) => io.err(`plumb: ${line}`) })
    if (out !== undefined) io.out(JSON.stringify(out))
    return 0
  } catch (err) {
    const e = unwrap(err)
    io.err(`plumb: CNI ${env.CNI_COMMAND ?? ''} failed: ${e.message}${e.details ? ` (${e.details})` : ''}`)
    io.out(JSON.stringify(e.toJSON(errorVersion(stdin))))
    return 1
  }
}

/** A CniError that a transaction re-threw as a PlumbError (runTx keeps the cause) is itself again. */
function unwrap(err: unknown): CniError {
  if (err instanceof PlumbError && err.cause instanceof CniError) {
    const inner = err.cause
    const undone = err.rolledBack?.length ? `rolled back: ${err.rolledBack.join('; ')}` : ''
    return new CniError(inner.code, inner.message, [inner.details, undone].filter(Boolean).join('; '))
  }
  return asCniError(err)
}

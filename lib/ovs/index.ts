// The Open vSwitch driver: ports and reads over OVSDB's socket, bridges through ovs-vsctl, every change read back from ovsdb.
//
// The hot path (isOvsBridge, getBridge, getPort, listPlumbPorts, lookupBridgeAndPort, addPort)
// speaks OVSDB JSON-RPC on one kept connection (./ovsdb.ts): an ovs-vsctl spawn costs ~6-10 ms
// and an ovs-port needed four. The rest (bridges, del-port) stays on ovs-vsctl: rare calls, and
// what --dry-run prints.

import { existsSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { PlumbError } from '../errors.js'
import { MARK_OWNER, MARK_OWNER_KEY, addPortArgv, checkName, createBridgeArgv, delPortArgv, deleteBridgeArgv } from './argv.js'
import type { AddPortOptions, CreateBridgeOptions } from './argv.js'
import { resolveDatapathType } from './datapath.js'
import { atomMap, atomOptional, atomSet, atomUuid, bridgeFromRows, joinPorts } from './parse.js'
import type { BridgeState, PortInfo, Row } from './parse.js'
import { ovsRunDir, ovsdbSocket } from '../config.js'
import { OvsdbError, ovsdbPlumbError, ovsdbSocketMissing, transact, transactAndWait } from './ovsdb.js'
import type { Op } from './ovsdb.js'
import { cleanStderr, describeCall as describe, runVsctl } from './run.js'
import type { CallContext } from './run.js'

export { addPortArgv, createBridgeArgv, delPortArgv, deleteBridgeArgv, ovsdbString, vsctlLine } from './argv.js'
export type { AddPortOptions, CreateBridgeOptions } from './argv.js'
export { kernelHasOvsDatapath, resolveDatapathType } from './datapath.js'
export type { DatapathType } from './datapath.js'
export type { PortInfo, BridgeState } from './parse.js'
export { START_HINT } from './run.js'
export { closeOvsdb, ovsdbConnectionsOpened } from './ovsdb.js'

// How long to wait for ovs-vswitchd's view to settle before calling a change failed. A port's
// transaction already waited for the reconfiguration (cur_cfg), as ovs-vsctl's add-br does, so
// this mostly covers the kernel device showing up.
const READBACK_MS = 1_000
const POLL_MS = 25

const isPlumbs = (ids: Record<string, string>): boolean => ids[MARK_OWNER_KEY] === MARK_OWNER

// --- OVSDB operations (RFC 7047 §5.2) ---

/** The columns read: enough for PortInfo (joinPorts) and BridgeState (bridgeFromRows). */
const PORT_COLUMNS = ['_uuid', 'name', 'tag', 'trunks', 'external_ids', 'interfaces']
const IFACE_COLUMNS = ['_uuid', 'name', 'ofport', 'error', 'link_state']
const BRIDGE_READ_COLUMNS = ['name', 'datapath_type', 'datapath_version', 'external_ids']

const byName = (name: string): unknown[][] => [['name', '==', name]]
const byUuid = (uuid: string): unknown[][] => [['_uuid', '==', ['uuid', uuid]]]
const selectOp = (table: string, where: unknown[][], columns: readonly string[]): Op => ({ op: 'select', table, where, columns: [...columns] })
/** Fails the whole transaction (at once: timeout 0) unless the rows matching `where` are exactly `rows`. */
const waitOp = (table: string, where: unknown[][], rows: Row[]): Op => ({ op: 'wait', table, where, columns: ['name'], until: '==', rows, timeout: 0 })
const rowsOf = (r: Record<string, unknown> | undefined): Row[] => (Array.isArray(r?.rows) ? (r.rows as Row[]) : [])

/** An OVSDB operation error (not a transport one) as a FAILED PlumbError of this call. */
async function ovsdbRead(ops: Op[], c: CallContext): Promise<Array<Record<string, unknown>>> {
  try {
    return await transact(ops, c)
  } catch (err) {
    throw ovsdbPlumbError(c, err)
  }
}

/** Ports by `where`, with their bridge and Interface state: one transaction (two for a port whose interface has another name). */
async function readPortsOvsdb(where: unknown[][], ifaceWhere: unknown[][], c: CallContext): Promise<PortInfo[]> {
  const [ports, bridges, ifaces] = (await ovsdbRead([selectOp('Port', where, PORT_COLUMNS), selectOp('Bridge', [], ['name', 'ports']), selectOp('Interface', ifaceWhere, IFACE_COLUMNS)], c)).map(rowsOf) as [Row[], Row[], Row[]]
  return joinPorts(ports, bridges, await withMemberIfaces(ports, ifaces, c))
}

/** The Interface rows `ports` name that `ifaces` lacks (a port not named like its interface), read by uuid. */
async function withMemberIfaces(ports: Row[], ifaces: Row[], c: CallContext): Promise<Row[]> {
  const have = new Set(ifaces.map((i) => atomUuid(i._uuid)))
  const missing = ports.flatMap((p) => atomSet(p.interfaces).map(atomUuid)).filter((u): u is string => u !== undefined && !have.has(u))
  if (missing.length === 0) return ifaces
  const more = await ovsdbRead(missing.map((u) => selectOp('Interface', byUuid(u), IFACE_COLUMNS)), c)
  return [...ifaces, ...more.flatMap(rowsOf)]
}

/** Is OVS usable here (for `doctor`)? Never throws: `reason` says what is missing. */
export async function ovsAvailable(): Promise<{ ok: boolean; version?: string; reason?: string }> {
  const c = { verb: 'reach', object: 'Open vSwitch database', name: 'Open_vSwitch' }
  try {
    const [row] = rowsOf((await ovsdbRead([selectOp('Open_vSwitch', [], ['ovs_version'])], c))[0])
    const version = atomOptional(row?.ovs_version)
    // ovs_version is written by ovs-vswitchd at start: empty means the switch daemon never ran.
    if (typeof version !== 'string' || version === '') return { ok: false, reason: 'ovsdb answers but ovs-vswitchd has not started (ovs_version unset)' }
    return { ok: true, version }
  } catch (err) {
    const e = err instanceof PlumbError ? err : new PlumbError('FAILED', String(err))
    return { ok: false, reason: e.hint ? `${e.message} (${e.hint})` : e.message }
  }
}

/**
 * The network namespace ovs-vswitchd runs in, as a /proc path, or why it cannot be told. OVS is
 * one per machine, but plumb's "host" is whatever netns it runs in: only in the switch's own
 * netns does "no link of that name" mean a port's interface is gone. Found through its pidfile
 * beside the database socket (ovs-ctl's default) or in OVS's run directory.
 */
export function vswitchdNetns(): { path: string } | { reason: string } {
  const files = [...new Set([`${dirname(ovsdbSocket())}/ovs-vswitchd.pid`, `${ovsRunDir()}/ovs-vswitchd.pid`])]
  for (const file of files) {
    let pid: number
    try {
      pid = Number(readFileSync(file, 'utf8').trim())
    } catch {
      continue
    }
    if (Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}/ns/net`)) return { path: `/proc/${pid}/ns/net` }
    return { reason: `ovs-vswitchd is not running (its pidfile ${file} names pid ${pid}, which is gone)` }
  }
  return { reason: `no ovs-vswitchd pidfile (looked for ${files.join(', ')})` }
}

/**
 * Whether a failure to reach OVSDB means "Open vSwitch is not on this host", so that every
 * question about it has the answer "no": no socket file, and nothing else of OVS either (its run
 * directory, the socket's directory, the kernel datapath's ovs-system device). Anything else (a
 * socket that refuses or does not answer, OVS's directory without the socket) is "don't know":
 * a userspace bridge's tap and a kernel datapath's ports outlive ovsdb-server.
 */
export function ovsNotHere(err: unknown): boolean {
  return ovsdbSocketMissing(err) && ![ovsRunDir(), dirname(ovsdbSocket()), '/sys/class/net/ovs-system'].some((p) => existsSync(p))
}

/** What OVS has under one name: its Bridge row, or the Port holding a Port or Interface row of that name. */
export interface OvsRowsNamed {
  bridge: boolean
  port?: { name: string; bridge: string }
}

/**
 * One OVSDB transaction: is NAME an OVS bridge, or a port (or a port's interface, as in a bond)
 * of one? A bridge's own local port is reported as the bridge. Over OVSDB only, and throws the
 * PlumbError of a failed call (see ovsNotHere for the failure that means "no OVS here").
 */
export async function rowsNamed(name: string): Promise<OvsRowsNamed> {
  checkName(name, 'interface name')
  const c = { verb: 'tell whether', object: 'Open vSwitch owns', name }
  const [bridges, ports, ifaces] = (
    await ovsdbRead([selectOp('Bridge', [], ['name', 'ports']), selectOp('Port', [], ['_uuid', 'name', 'interfaces']), selectOp('Interface', byName(name), ['_uuid'])], c)
  ).map(rowsOf) as [Row[], Row[], Row[]]
  if (bridges.some((b) => b.name === name)) return { bridge: true }
  const iface = new Set(ifaces.map((i) => atomUuid(i._uuid)))
  const port = ports.find((p) => p.name === name) ?? ports.find((p) => atomSet(p.interfaces).some((u) => iface.has(atomUuid(u))))
  if (!port) return { bridge: false }
  const uuid = atomUuid(port._uuid)
  const bridge = bridges.find((b) => atomSet(b.ports).some((u) => atomUuid(u) === uuid))
  return { bridge: false, port: { name: String(port.name), bridge: bridge ? String(bridge.name) : '' } }
}

/** An OVS bridge as `ls` shows it: its marks and its ports (the bridge's own local port left out). */
export interface OvsBridgeInfo {
  name: string
  externalIds: Record<string, string>
  ports: PortInfo[]
}

/** Every OVS bridge with its ports' VLAN settings and marks: one OVSDB transaction. */
export async function listBridges(): Promise<OvsBridgeInfo[]> {
  const c = { verb: 'list', object: 'OVS bridges', name: '*' }
  const [bridges, ports] = (await ovsdbRead([selectOp('Bridge', [], ['name', 'ports', 'external_ids']), selectOp('Port', [], PORT_COLUMNS)], c)).map(rowsOf) as [Row[], Row[]]
  const joined = joinPorts(ports, bridges, [])
  return bridges
    .map((b) => ({
      name: String(b.name),
      externalIds: atomMap(b.external_ids),
      ports: joined.filter((p) => p.bridge === b.name && p.name !== b.name),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** Is there a Bridge row of that name (what `ovs-vsctl br-exists` answers)? */
export async function isOvsBridge(name: string): Promise<boolean> {
  checkName(name, 'OVS bridge name')
  const [r] = await ovsdbRead([selectOp('Bridge', byName(name), ['name'])], { verb: 'look up', object: 'OVS bridge', name })
  return rowsOf(r).length > 0
}

/** The Bridge row and its local interface, or undefined. */
export async function getBridge(name: string): Promise<BridgeState | undefined> {
  checkName(name, 'OVS bridge name')
  const [b, i] = (await ovsdbRead([selectOp('Bridge', byName(name), BRIDGE_READ_COLUMNS), selectOp('Interface', byName(name), IFACE_COLUMNS)], { verb: 'read', object: 'OVS bridge', name })).map(rowsOf)
  return b?.[0] ? bridgeFromRows(b[0], i?.[0]) : undefined
}

// sync: node:fs/promises would be loaded (~1 ms) by every command that bundles this module
async function linkExists(name: string): Promise<boolean> {
  return existsSync(`/sys/class/net/${name}`)
}

/** A read-back's verdict: undefined = all good; `retry` = may still settle (vswitchd or the kernel lagging). */
type Verdict = { problem: string; retry?: boolean } | undefined

/** Poll until `check` is happy, says its problem is final, or the deadline passes; returns the last problem. */
async function settle(check: () => Promise<Verdict>): Promise<string | undefined> {
  const deadline = Date.now() + READBACK_MS
  for (;;) {
    const v = await check()
    if (v === undefined) return undefined
    if (!v.retry || Date.now() >= deadline) return v.problem
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}

/**
 * Create an OVS bridge (ovs-vsctl add-br, datapath and marks in the same transaction) and check
 * it really works: add-br can print "Error detected while setting up" and still exit 0. On a
 * failed read-back the half-made bridge is deleted again and a PlumbError thrown.
 * Idempotent: an existing bridge is left exactly as it is (`created: false`; `owned` says
 * whether plumb's mark is on it, the caller decides what a foreign one means).
 */
export async function createBridge(name: string, opts: CreateBridgeOptions = {}, hooks: { childOf?: string } = {}): Promise<{ created: boolean; owned: boolean; datapathType: string }> {
  const argv = createBridgeArgv(name, opts)
  const ctx = { verb: 'create', object: 'OVS bridge', name }
  const existing = await getBridge(name)
  if (existing) return { created: false, owned: isPlumbs(existing.externalIds), datapathType: existing.datapathType || 'system' }

  let stderr = ''
  try {
    stderr = (await runVsctl(argv, ctx, hooks)).stderr
  } catch (err) {
    // Lost a race with another creator: same outcome as finding it there.
    if (err instanceof PlumbError && err.code === 'CONFLICT') {
      const now = await getBridge(name)
      if (now) return { created: false, owned: isPlumbs(now.externalIds), datapathType: now.datapathType || 'system' }
    }
    throw err
  }

  const want = resolveDatapathType(opts.datapathType ?? 'auto')
  let state: BridgeState | undefined
  const problem = await settle(async () => {
    state = await getBridge(name)
    if (!state) return { problem: 'the bridge is not in ovsdb after add-br' }
    if ((state.datapathType || 'system') !== want) return { problem: `datapath_type is "${state.datapathType}", not "${want}"` }
    if (state.ifaceError) return { problem: state.ifaceError }
    // No ofport (or -1): ovs-vswitchd could not open the bridge's datapath, e.g. `system` without
    // the kernel module. An empty datapath_version says the same, for sure: no point waiting then.
    if (state.ofport === undefined || state.ofport < 0) {
      return { problem: `ovs-vswitchd could not open its datapath (${want}${want === 'system' ? ': is the openvswitch kernel module there? try datapath netdev' : ''})`, retry: state.datapathVersion !== '' && state.ofport === undefined }
    }
    if (!(await linkExists(name))) return { problem: `its interface "${name}" did not appear in the kernel`, retry: true }
    return undefined
  })
  if (problem !== undefined) {
    const said = cleanStderr(stderr) ? ` (ovs-vsctl said: ${cleanStderr(stderr)})` : ''
    let undone = ''
    if (state) {
      await runVsctl(deleteBridgeArgv(name), { verb: 'delete', object: 'OVS bridge', name }).then(
        () => (undone = '; the half-made bridge was deleted again'),
        () => (undone = `; deleting the half-made bridge failed too: run ovs-vsctl --if-exists del-br ${name}`),
      )
    }
    throw new PlumbError('FAILED', `failed to create OVS bridge "${name}": ${problem}${said}${undone}`, {
      hint: want === 'system' ? 'without the openvswitch kernel module use the userspace datapath (datapath netdev)' : 'see /var/log/openvswitch/ovs-vswitchd.log',
      rolledBack: undone.includes('deleted again') ? [`ovs-vsctl --if-exists del-br ${name}`] : [],
    })
  }
  return { created: true, owned: isPlumbs(opts.mark ?? {}), datapathType: want }
}

/** `ovs-vsctl --if-exists del-br NAME` (its ports go with it). */
export async function deleteBridge(name: string): Promise<void> {
  await runVsctl(deleteBridgeArgv(name), { verb: 'delete', object: 'OVS bridge', name })
}

const sameList = (a: number[], b: number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])

/** What ovs-port needs to know of a bridge and a port before it creates anything. */
export interface BridgeAndPort {
  bridgeExists: boolean
  /** the bridge's datapath_type ('system' when unset), when it exists */
  datapathType?: string
  port: PortInfo | undefined
}

/** Whether the OVS bridge exists (and its datapath type) and the port row (if `port` is given), in one OVSDB round trip. */
export async function lookupBridgeAndPort(bridge: string, port?: string): Promise<BridgeAndPort> {
  checkName(bridge, 'OVS bridge name')
  if (port !== undefined) checkName(port, 'OVS port name')
  const found = (datapathType: string | undefined, info: PortInfo | undefined): BridgeAndPort =>
    datapathType === undefined ? { bridgeExists: false, port: info } : { bridgeExists: true, datapathType: datapathType || 'system', port: info }
  const c = { verb: 'look up', object: 'OVS bridge', name: bridge }
  const ops = [selectOp('Bridge', byName(bridge), ['name', 'datapath_type'])]
  if (port !== undefined) ops.push(selectOp('Port', byName(port), PORT_COLUMNS), selectOp('Bridge', [], ['name', 'ports']), selectOp('Interface', byName(port), IFACE_COLUMNS))
  const [b, ports, bridges, ifaces] = (await ovsdbRead(ops, c)).map(rowsOf) as [Row[], Row[] | undefined, Row[] | undefined, Row[] | undefined]
  const info = ports?.length ? joinPorts(ports, bridges ?? [], await withMemberIfaces(ports, ifaces ?? [], c))[0] : undefined
  const dp = b[0]?.datapath_type
  return found(b[0] ? (typeof dp === 'string' ? dp : '') : undefined, info)
}

/**
 * The ports of a bridge with their VLAN settings (its own local port left out), in one OVSDB
 * read: which guests share a segment with a new port. [] when there is no such bridge.
 */
export async function bridgePortVlans(bridge: string): Promise<Array<{ name: string; tag?: number; trunks: number[] }>> {
  checkName(bridge, 'OVS bridge name')
  const c = { verb: 'list', object: 'ports of OVS bridge', name: bridge }
  const [b, ports] = (await ovsdbRead([selectOp('Bridge', byName(bridge), ['ports']), selectOp('Port', [], ['_uuid', 'name', 'tag', 'trunks'])], c)).map(rowsOf) as [Row[], Row[]]
  const members = new Set(atomSet(b[0]?.ports).map(atomUuid))
  return ports
    .filter((p) => members.has(atomUuid(p._uuid)) && p.name !== bridge)
    .map((p) => {
      const tag = atomOptional(p.tag)
      const trunks = atomSet(p.trunks).filter((n): n is number => typeof n === 'number')
      return { name: String(p.name), ...(typeof tag === 'number' ? { tag } : {}), trunks: trunks.sort((x, y) => x - y) }
    })
}

/** Ask OVSDB for a trunks/tag/external_ids value in its JSON notation. */
const ovsdbSet = (xs: unknown[]): unknown[] => ['set', xs]
const ovsdbMap = (ids: Record<string, string>): unknown[] => ['map', Object.entries(ids)]

/**
 * `--may-exist add-port BR P -- set port P tag=.. trunks=.. external_ids:..` over OVSDB, in
 * one transaction when the port is new (the hot path): `wait` operations make it fail, instead
 * of doing anything, if the bridge is missing or a Port or Interface named P exists. Only then
 * the rows are read and the cases told apart: a row plumb marked, on this bridge, is re-set in
 * place (as --may-exist does); one that is not plumb's is refused untouched. Resolves once
 * ovs-vswitchd has applied it, to the Port row's uuid.
 */
async function addPortOvsdb(bridge: string, port: string, opts: AddPortOptions, wantTrunks: number[]): Promise<string> {
  const c = { verb: 'add', object: 'OVS port', name: port }
  const settings = { tag: opts.tag === undefined ? ovsdbSet([]) : opts.tag, trunks: ovsdbSet(wantTrunks) }
  const fresh: Op[] = [
    waitOp('Bridge', byName(bridge), [{ name: bridge }]),
    waitOp('Port', byName(port), []),
    waitOp('Interface', byName(port), []),
    { op: 'insert', table: 'Interface', row: { name: port }, 'uuid-name': 'iface' },
    { op: 'insert', table: 'Port', row: { name: port, interfaces: ['named-uuid', 'iface'], ...settings, external_ids: ovsdbMap(opts.externalIds) }, 'uuid-name': 'port' },
    { op: 'mutate', table: 'Bridge', where: byName(bridge), mutations: [['ports', 'insert', ovsdbSet([['named-uuid', 'port']])]] },
  ]
  try {
    const res = await transactAndWait(fresh, c)
    const uuid = atomUuid(res[4]?.uuid)
    if (uuid) return uuid
    throw new PlumbError('FAILED', `${describe(c)}: ovsdb-server did not say which row it inserted`)
  } catch (err) {
    // Only a failed `wait` means "something is there already": anything else is an error as is.
    if (!(err instanceof OvsdbError && err.opIndex !== undefined && err.opIndex <= 2)) throw ovsdbPlumbError(c, err)
  }

  const { bridgeExists, port: existing } = await lookupBridgeAndPort(bridge, port)
  if (!bridgeExists) throw new PlumbError('NOT_FOUND', `${describe(c)}: no bridge named ${bridge}`)
  if (!existing) {
    throw new PlumbError('CONFLICT', `${describe(c)}: an interface named ${port} already exists (in another port)`, { hint: 'plumb never changes an OVS port it did not create: choose another port name' })
  }
  if (!isPlumbs(existing.externalIds)) {
    throw new PlumbError('CONFLICT', `${describe(c)}: OVS port "${port}" exists and is not plumb's (no external_ids:${MARK_OWNER_KEY}=${MARK_OWNER})`, { hint: 'plumb never changes an OVS port it did not create: choose another port name' })
  }
  if (existing.bridge !== bridge) {
    // ovs-vsctl's own words for the same refusal.
    throw new PlumbError('CONFLICT', `${describe(c)}: "--may-exist add-port ${bridge} ${port}" but ${port} is actually attached to bridge ${existing.bridge}`)
  }
  // plumb's stale or earlier row on this bridge: re-set it, if it is still the row we just read.
  const [row] = rowsOf((await ovsdbRead([selectOp('Port', byName(port), ['_uuid'])], c))[0])
  const uuid = atomUuid(row?._uuid)
  if (!uuid) throw new PlumbError('FAILED', `${describe(c)}: the port row went away while it was re-set; try again`)
  const keys = Object.keys(opts.externalIds)
  const reset: Op[] = [
    { op: 'wait', table: 'Bridge', where: [...byName(bridge), ['ports', 'includes', ['uuid', uuid]]], columns: ['name'], until: '==', rows: [{ name: bridge }], timeout: 0 },
    { op: 'wait', table: 'Port', where: [...byUuid(uuid), ['external_ids', 'includes', ovsdbMap({ [MARK_OWNER_KEY]: MARK_OWNER })]], columns: ['name'], until: '==', rows: [{ name: port }], timeout: 0 },
    { op: 'update', table: 'Port', where: byUuid(uuid), row: settings },
    // `set port P external_ids:k=v` replaces each key given and keeps the others.
    { op: 'mutate', table: 'Port', where: byUuid(uuid), mutations: [['external_ids', 'delete', ovsdbSet(keys)]] },
    { op: 'mutate', table: 'Port', where: byUuid(uuid), mutations: [['external_ids', 'insert', ovsdbMap(opts.externalIds)]] },
  ]
  try {
    await transactAndWait(reset, c)
  } catch (err) {
    if (err instanceof OvsdbError && err.opIndex !== undefined && err.opIndex <= 1) {
      throw new PlumbError('CONFLICT', `${describe(c)}: the port row changed while plumb re-set it; try again`)
    }
    throw ovsdbPlumbError(c, err)
  }
  return uuid
}

/** Remove a Port row plumb just added (its Interface goes with it: ovsdb collects unreferenced rows). */
async function removePortOvsdb(bridge: string, uuid: string, port: string): Promise<void> {
  const mark = ovsdbMap({ [MARK_OWNER_KEY]: MARK_OWNER })
  await transactAndWait(
    [
      // Only while it is still plumb's row (by its mark) on that bridge.
      { op: 'wait', table: 'Port', where: [...byUuid(uuid), ['external_ids', 'includes', mark]], columns: ['name'], until: '==', rows: [{ name: port }], timeout: 0 },
      { op: 'mutate', table: 'Bridge', where: byName(bridge), mutations: [['ports', 'delete', ovsdbSet([['uuid', uuid]])]] },
    ],
    { verb: 'delete', object: 'OVS port', name: port },
  )
}

/**
 * Add (or re-set) a port as one transaction and read it back: in the bridge, with the tag /
 * trunks asked for, its interface opened (ofport not -1, no `error`). The transaction commits
 * even when the device is missing, so the read-back is the only real check. A port that fails it
 * is removed again (it is plumb's: we just marked it) and a PlumbError thrown. A port row that
 * exists and is not plumb's is refused (CONFLICT) and left untouched.
 */
export async function addPort(bridge: string, port: string, opts: AddPortOptions): Promise<PortInfo> {
  addPortArgv(bridge, port, opts) // validates: the same checks as the line --dry-run shows
  const wantTrunks = opts.trunks ? [...new Set(opts.trunks)].sort((a, b) => a - b) : []
  const uuid = await addPortOvsdb(bridge, port, opts, wantTrunks)
  let info: PortInfo | undefined
  const problem = await settle(async () => {
    info = await getPort(port)
    if (!info) return { problem: 'the port is not in ovsdb after add-port' }
    if (info.bridge !== bridge) return { problem: `the port is on bridge "${info.bridge}", not "${bridge}"` }
    if (info.tag !== opts.tag) return { problem: `its tag is ${info.tag ?? 'unset'}, not ${opts.tag ?? 'unset'}` }
    if (!sameList(info.trunks, wantTrunks)) return { problem: `its trunks are [${info.trunks.join(',')}], not [${wantTrunks.join(',')}]` }
    if (info.ifaceError) return { problem: info.ifaceError }
    if (info.ofport === -1) return { problem: 'ovs-vswitchd could not open the interface (ofport -1)' }
    // Not numbered yet: ovs-vswitchd has not finished with it (we waited for its reconfiguration, so rarely).
    if (info.ofport === undefined) return { problem: 'ovs-vswitchd gave the interface no OpenFlow port number', retry: true }
    return undefined
  })
  if (problem !== undefined) {
    let undone: string[] = []
    if (info && info.bridge === bridge && isPlumbs(info.externalIds)) {
      undone = await removePortOvsdb(bridge, uuid, port).then(
        () => [`ovs-vsctl --if-exists del-port ${bridge} ${port}`],
        () => [],
      )
    }
    throw new PlumbError('FAILED', `failed to add OVS port "${port}" to bridge "${bridge}": ${problem}${undone.length ? '; the port row was removed again' : ''}`, {
      hint: /No such device|could not open network device/.test(problem) ? `create the interface "${port}" in the host's netns first` : 'see /var/log/openvswitch/ovs-vswitchd.log',
      rolledBack: undone,
    })
  }
  return info!
}

/** One port (its Port row, bridge, and Interface state), or undefined when there is none. */
export async function getPort(port: string): Promise<PortInfo | undefined> {
  checkName(port, 'OVS port name')
  return (await readPortsOvsdb(byName(port), byName(port), { verb: 'read', object: 'OVS port', name: port }))[0]
}

/** Every port marked external_ids:plumb-owner=plumb, in one transaction. */
export async function listPlumbPorts(): Promise<PortInfo[]> {
  const c = { verb: 'list', object: 'OVS ports marked', name: `${MARK_OWNER_KEY}=${MARK_OWNER}` }
  return readPortsOvsdb([['external_ids', 'includes', ovsdbMap({ [MARK_OWNER_KEY]: MARK_OWNER })]], [], c)
}

/** The names of the bridges whose external_ids hold `key=value` (a lab's: plumb-lab=NAME). */
export async function listBridgesMarked(key: string, value: string): Promise<string[]> {
  const c = { verb: 'list', object: 'OVS bridges marked', name: `${key}=${value}` }
  const [b] = await ovsdbRead([selectOp('Bridge', [['external_ids', 'includes', ovsdbMap({ [key]: value })]], ['name'])], c)
  return rowsOf(b).map((r) => String(atomOptional(r.name)))
}

/**
 * `ovs-vsctl --if-exists del-port [BR] PORT`. With a bridge that no longer exists there is
 * nothing to remove from it: done. A port on another bridge than the one given is an error.
 */
export async function delPort(port: string, opts: { bridge?: string } = {}): Promise<void> {
  try {
    await runVsctl(delPortArgv(port, opts), { verb: 'delete', object: 'OVS port', name: port })
  } catch (err) {
    if (opts.bridge !== undefined && err instanceof PlumbError && /no bridge named/.test(err.message)) return
    throw err
  }
}

/**
 * Remove exactly this Port row (as listPlumbPorts read it): in one OVSDB transaction, only while
 * the row of that uuid is still plumb's on its bridge. A row made since under the same name (a
 * container's port added again after its restart, between gc's reads) is another uuid and stays;
 * a row already gone is nothing to do. By name, `del-port` would take the new one.
 */
export async function delPortRow(port: PortInfo): Promise<void> {
  if (!port.uuid || !port.bridge) return delPort(port.name)
  try {
    await removePortOvsdb(port.bridge, port.uuid, port.name)
  } catch (err) {
    // the `wait` (operation 0) failed: that row is no longer there as it was read
    if (err instanceof OvsdbError && err.opIndex === 0) return
    throw err
  }
}

/** `ovs-vsctl list-ports BR`: the bridge's ports (not its own local port); [] when it is gone. */
export async function listBridgePorts(bridge: string): Promise<string[]> {
  const res = await runVsctl(['list-ports', bridge], { verb: 'list', object: 'ports of OVS bridge', name: bridge }).catch((err: unknown) => {
    if (err instanceof PlumbError && err.code === 'NOT_FOUND') return undefined
    throw err
  })
  return res ? res.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : []
}

/**
 * Delete an OVS bridge that plumb created (its plumb-owner mark) once it has no port left;
 * a bridge that is not plumb's, or still has ports, stays. Resolves to whether it was deleted.
 */
export async function deleteBridgeIfEmptyAndOurs(bridge: string): Promise<boolean> {
  const state = await getBridge(bridge)
  // A lab's OVS bridge (plumb-lab) stays until `plumb lab destroy`, empty or not.
  if (!state || state.externalIds[MARK_OWNER_KEY] !== MARK_OWNER || state.externalIds['plumb-lab'] !== undefined) return false
  if ((await listBridgePorts(bridge)).length > 0) return false
  await deleteBridge(bridge)
  return true
}

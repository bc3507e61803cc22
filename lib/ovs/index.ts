// The Open vSwitch driver: bridges and ports through ovs-vsctl, every change read back from ovsdb.

import { access } from 'node:fs/promises'
import { PlumbError } from '../errors.js'
import {
  MARK_OWNER,
  MARK_OWNER_KEY,
  addPortArgv,
  checkName,
  createBridgeArgv,
  delPortArgv,
  deleteBridgeArgv,
  ovsdbString,
  readBridgeArgv,
  readPortsArgv,
} from './argv.js'
import type { AddPortOptions, CreateBridgeOptions } from './argv.js'
import { resolveDatapathType } from './datapath.js'
import { parseBridge, parsePorts, parseTables, tableRows, atomOptional } from './parse.js'
import type { BridgeState, PortInfo } from './parse.js'
import { cleanStderr, runVsctl } from './run.js'

export { addPortArgv, createBridgeArgv, delPortArgv, deleteBridgeArgv, ovsdbString, vsctlLine, VSCTL_TIMEOUT_S, MARK_OWNER, MARK_OWNER_KEY } from './argv.js'
export type { AddPortOptions, CreateBridgeOptions } from './argv.js'
export { kernelHasOvsDatapath, resolveDatapathType } from './datapath.js'
export type { DatapathType } from './datapath.js'
export type { PortInfo, BridgeState } from './parse.js'
export { INSTALL_HINT, START_HINT, vsctlBinary } from './run.js'

// How long to wait for ovs-vswitchd's view to settle before calling a change failed. ovs-vsctl
// already waits for the reconfiguration, so this only covers the kernel device showing up.
const READBACK_MS = 1_000
const POLL_MS = 25

const isPlumbs = (ids: Record<string, string>): boolean => ids[MARK_OWNER_KEY] === MARK_OWNER

/** Is OVS usable here (for `doctor`)? Never throws: `reason` says what is missing. */
export async function ovsAvailable(): Promise<{ ok: boolean; version?: string; reason?: string }> {
  try {
    const res = await runVsctl(['--format=json', '--columns=ovs_version', 'list', 'Open_vSwitch'], { verb: 'reach', object: 'Open vSwitch database', name: 'Open_vSwitch' })
    const [row] = tableRows(parseTables(res.stdout)[0] ?? { headings: [], data: [] })
    const version = atomOptional(row?.ovs_version)
    // ovs_version is written by ovs-vswitchd at start: empty means the switch daemon never ran.
    if (typeof version !== 'string' || version === '') return { ok: false, reason: 'ovsdb answers but ovs-vswitchd has not started (ovs_version unset)' }
    return { ok: true, version }
  } catch (err) {
    const e = err instanceof PlumbError ? err : new PlumbError('FAILED', String(err))
    return { ok: false, reason: e.hint ? `${e.message} (${e.hint})` : e.message }
  }
}

/** `ovs-vsctl br-exists NAME`: exit 0 yes, exit 2 no. */
export async function isOvsBridge(name: string): Promise<boolean> {
  checkName(name, 'OVS bridge name')
  const res = await runVsctl(['br-exists', name], { verb: 'look up', object: 'OVS bridge', name }, { okExit: [0, 2] })
  return res.exitCode === 0
}

/** The Bridge row and its local interface, or undefined. */
export async function getBridge(name: string): Promise<BridgeState | undefined> {
  checkName(name, 'OVS bridge name')
  const res = await runVsctl(readBridgeArgv(name), { verb: 'read', object: 'OVS bridge', name })
  return parseBridge(res.stdout)
}

async function linkExists(name: string): Promise<boolean> {
  return access(`/sys/class/net/${name}`).then(
    () => true,
    () => false,
  )
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
export async function createBridge(name: string, opts: CreateBridgeOptions = {}): Promise<{ created: boolean; owned: boolean; datapathType: string }> {
  const argv = createBridgeArgv(name, opts)
  const ctx = { verb: 'create', object: 'OVS bridge', name }
  const existing = await getBridge(name)
  if (existing) return { created: false, owned: isPlumbs(existing.externalIds), datapathType: existing.datapathType || 'system' }

  let stderr = ''
  try {
    stderr = (await runVsctl(argv, ctx)).stderr
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

/**
 * Add (or re-set) a port as one transaction and read it back: in the bridge, with the tag /
 * trunks asked for, its interface opened (ofport not -1, no `error`). add-port exits 0 even
 * when the device is missing, so the read-back is the only real check. A port that fails it is
 * removed again (it is plumb's: we just marked it) and a PlumbError thrown.
 */
export async function addPort(bridge: string, port: string, opts: AddPortOptions): Promise<PortInfo> {
  const argv = addPortArgv(bridge, port, opts)
  const res = await runVsctl(argv, { verb: 'add', object: 'OVS port', name: port })
  const wantTrunks = opts.trunks ? [...new Set(opts.trunks)].sort((a, b) => a - b) : []
  let info: PortInfo | undefined
  const problem = await settle(async () => {
    info = await getPort(port)
    if (!info) return { problem: 'the port is not in ovsdb after add-port' }
    if (info.bridge !== bridge) return { problem: `the port is on bridge "${info.bridge}", not "${bridge}"` }
    if (info.tag !== opts.tag) return { problem: `its tag is ${info.tag ?? 'unset'}, not ${opts.tag ?? 'unset'}` }
    if (!sameList(info.trunks, wantTrunks)) return { problem: `its trunks are [${info.trunks.join(',')}], not [${wantTrunks.join(',')}]` }
    if (info.ifaceError) return { problem: info.ifaceError }
    if (info.ofport === -1) return { problem: 'ovs-vswitchd could not open the interface (ofport -1)' }
    // Not numbered yet: ovs-vswitchd has not finished with it (ovs-vsctl normally waits for that).
    if (info.ofport === undefined) return { problem: 'ovs-vswitchd gave the interface no OpenFlow port number', retry: true }
    return undefined
  })
  if (problem !== undefined) {
    const said = cleanStderr(res.stderr) ? ` (ovs-vsctl said: ${cleanStderr(res.stderr)})` : ''
    let undone: string[] = []
    if (info && info.bridge === bridge && isPlumbs(info.externalIds)) {
      undone = await runVsctl(delPortArgv(port, { bridge }), { verb: 'delete', object: 'OVS port', name: port }).then(
        () => [`ovs-vsctl --if-exists del-port ${bridge} ${port}`],
        () => [],
      )
    }
    throw new PlumbError('FAILED', `failed to add OVS port "${port}" to bridge "${bridge}": ${problem}${said}${undone.length ? '; the port row was removed again' : ''}`, {
      hint: /No such device|could not open network device/.test(problem) ? `create the interface "${port}" in the host's netns first` : 'see /var/log/openvswitch/ovs-vswitchd.log',
      rolledBack: undone,
    })
  }
  return info!
}

async function readPorts(condition: string, c: { verb: string; object: string; name: string }): Promise<PortInfo[]> {
  const res = await runVsctl(readPortsArgv(condition), c)
  return parsePorts(res.stdout)
}

/** One port (its Port row, bridge, and Interface state), or undefined when there is none. */
export async function getPort(port: string): Promise<PortInfo | undefined> {
  checkName(port, 'OVS port name')
  const [p] = await readPorts(`name=${ovsdbString(port)}`, { verb: 'read', object: 'OVS port', name: port })
  return p
}

/** Every port marked external_ids:plumb-owner=plumb, in one ovs-vsctl call. */
export async function listPlumbPorts(): Promise<PortInfo[]> {
  return readPorts(`external_ids:${MARK_OWNER_KEY}=${MARK_OWNER}`, { verb: 'list', object: 'OVS ports marked', name: `${MARK_OWNER_KEY}=${MARK_OWNER}` })
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
  if (!state || state.externalIds[MARK_OWNER_KEY] !== MARK_OWNER) return false
  if ((await listBridgePorts(bridge)).length > 0) return false
  await deleteBridge(bridge)
  return true
}

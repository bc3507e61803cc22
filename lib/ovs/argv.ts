// The ovs-vsctl command lines, built purely: the ones plumb runs (bridges, del-port) and add-port, the
// equivalent of addPort's OVSDB transaction; `--dry-run` prints them.

import { usageError } from '../errors.js'
import { resolveDatapathType } from './datapath.js'
import type { DatapathType } from './datapath.js'

/** Every call gets it: without a timeout ovs-vsctl waits forever for a hung ovs-vswitchd. */
export const VSCTL_TIMEOUT_S = 5

/** The marks plumb writes into external_ids (extra `plumb-*` or other keys are accepted). */
export const MARK_OWNER_KEY = 'plumb-owner'
export const MARK_OWNER = 'plumb'

export interface CreateBridgeOptions {
  /** `auto` (default) picks netdev (userspace) when the kernel has no openvswitch datapath */
  datapathType?: DatapathType | 'auto'
  /** external_ids of the Bridge row, e.g. { 'plumb-owner': 'plumb', 'plumb-op': 'bridge' } */
  mark?: Record<string, string>
}

export interface AddPortOptions {
  /** access port on this VLAN */
  tag?: number
  /** trunk port carrying these VLANs */
  trunks?: number[]
  /** external_ids of the Port row: plumb-owner, plumb-guest, plumb-ifname, plumb-op, ... */
  externalIds: Record<string, string>
}

// Characters ovsdb's unquoted-string syntax takes as-is; anything else goes in double quotes.
const PLAIN = /^[A-Za-z0-9_.-]+$/
const KEY = /^[A-Za-z0-9_.:-]+$/

/** A value in ovs-vsctl's column syntax: plain when safe, else a C-style quoted string. */
export function ovsdbString(value: string): string {
  if (PLAIN.test(value)) return value
  // JSON's escapes (\" \\ \n \uXXXX) are the ones ovsdb's string parser reads.
  return JSON.stringify(value)
}

/** Interface, port and bridge names: what the kernel (IFNAMSIZ) and ovs-vsctl's argv can take. */
export function checkName(name: string, what: string): string {
  if (typeof name !== 'string' || name === '') throw usageError(`${what} is empty`)
  if (Buffer.byteLength(name) > 15) throw usageError(`${what} "${name}" is longer than 15 bytes`, 'the kernel limits interface names to 15 bytes')
  // A leading dash would be read as an option; '/', whitespace and ':' are refused by the kernel or ovs-vsctl.
  if (name.startsWith('-') || !/^[^\s/:=,"'\\]+$/.test(name)) throw usageError(`${what} "${name}" has characters an interface name can't have`)
  return name
}

function checkVid(vid: number, what: string): number {
  if (!Number.isInteger(vid) || vid < 0 || vid > 4095) throw usageError(`${what} ${String(vid)} is not a VLAN id (0-4095)`)
  return vid
}

function externalIdArgs(ids: Record<string, string>): string[] {
  return Object.entries(ids).map(([k, v]) => {
    if (!KEY.test(k)) throw usageError(`external_ids key "${k}" has characters plumb does not write`, 'use letters, digits, - _ . :')
    if (typeof v !== 'string') throw usageError(`external_ids value of "${k}" is not a string`)
    return `external_ids:${k}=${ovsdbString(v)}`
  })
}

/**
 * `add-br BR -- set bridge BR datapath_type=T external_ids:...` as one transaction. No
 * --may-exist on purpose: an existing bridge (maybe someone else's) must never get our marks or
 * datapath; createBridge looks the bridge up first and this refuses if it raced.
 */
export function createBridgeArgv(name: string, opts: CreateBridgeOptions = {}): string[] {
  checkName(name, 'OVS bridge name')
  const dp = resolveDatapathType(opts.datapathType ?? 'auto')
  return ['add-br', name, '--', 'set', 'bridge', name, `datapath_type=${dp}`, ...externalIdArgs(opts.mark ?? {})]
}

export function deleteBridgeArgv(name: string): string[] {
  checkName(name, 'OVS bridge name')
  return ['--if-exists', 'del-br', name]
}

/**
 * `--may-exist add-port BR P -- set port P tag=.. trunks=.. external_ids:..`: what addPort's
 * transaction does, as one ovs-vsctl line (and addPort's checks of its input). tag and trunks
 * are always both written (the unused one as []), so re-adding a port plumb made earlier leaves
 * it exactly as asked, not with a stale VLAN. The marks go on the Port row: it outlives the
 * interface (ofport -1), which is what `gc` looks for.
 */
export function addPortArgv(bridge: string, port: string, opts: AddPortOptions): string[] {
  checkName(bridge, 'OVS bridge name')
  checkName(port, 'OVS port name')
  if (opts.tag !== undefined && opts.trunks !== undefined) throw usageError('an OVS port is either an access port (tag) or a trunk (trunks), not both')
  const tag = opts.tag === undefined ? '[]' : String(checkVid(opts.tag, 'tag'))
  let trunks = '[]'
  if (opts.trunks !== undefined) {
    if (opts.trunks.length === 0) throw usageError('trunks is empty', 'give at least one VLAN id, or a tag for an access port')
    trunks = [...new Set(opts.trunks.map((v) => checkVid(v, 'trunk')))].sort((a, b) => a - b).join(',')
  }
  return ['--may-exist', 'add-port', bridge, port, '--', 'set', 'port', port, `tag=${tag}`, `trunks=${trunks}`, ...externalIdArgs(opts.externalIds)]
}

export function delPortArgv(port: string, opts: { bridge?: string } = {}): string[] {
  checkName(port, 'OVS port name')
  if (opts.bridge !== undefined) checkName(opts.bridge, 'OVS bridge name')
  return ['--if-exists', 'del-port', ...(opts.bridge !== undefined ? [opts.bridge] : []), port]
}

/** Single-quote for a POSIX shell when needed, so a dry-run line can be pasted as is. */
function shellWord(arg: string): string {
  if (/^[A-Za-z0-9_.,:=@%+\/-]+$/.test(arg)) return arg
  return `'${arg.replace(/'/g, `'\\''`)}'`
}

/** `ovs-vsctl ARGV...` as a shell line (without --db and --timeout, which every real call adds). */
export function vsctlLine(argv: string[]): string {
  return ['ovs-vsctl', ...argv].map(shellWord).join(' ')
}

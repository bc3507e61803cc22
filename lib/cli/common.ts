// What every command module shares: the global flags, and running an op with rendering and
// the exit code it earns.

import type { Argv } from 'yargs'
import type { CommonOptions } from '../ops/context.js'
import type { DhcpClient, DhcpLeaseOptions } from '../ops/dhcp.js'
import type { OpResult } from '../ops/result.js'
import type { CliIo } from './io.js'
import { renderError, renderResult } from './render.js'

export interface GlobalArgs {
  json: boolean
  dryRun: boolean
  verbose: boolean
  quiet: boolean
  allowHost: boolean
}

/** Set by a command's handler; read by main() once parsing is done. */
export interface CliState {
  exitCode: number
  io: CliIo
}

export function commonOptions(args: GlobalArgs, io: CliIo): CommonOptions {
  return {
    dryRun: args.dryRun,
    allowHost: args.allowHost,
    ...(args.verbose ? { log: (line: string) => io.err(`+ ${line}`) } : {}),
  }
}

/** Run an op, render its result or its error, and record the exit code. */
export async function runOp(state: CliState, args: GlobalArgs, op: () => Promise<OpResult>): Promise<void> {
  try {
    const result = await op()
    renderResult(result, args, state.io)
    state.exitCode = 0
  } catch (err) {
    state.exitCode = renderError(err, args, state.io)
  }
}

/** Run something whose output the command renders itself. */
export async function runCustom<T>(state: CliState, args: GlobalArgs, op: () => Promise<T>, render: (r: T) => void): Promise<void> {
  try {
    render(await op())
    state.exitCode = state.exitCode || 0
  } catch (err) {
    state.exitCode = renderError(err, args, state.io)
  }
}

/** The IP-spec / link flags the link commands share. */
export function linkFlags<T>(y: Argv<T>) {
  return dhcpFlags(y)
    .option('ifname', { alias: 'i', type: 'string', describe: 'name inside the guest (default: the first free ethN)' })
    .option('mac', { type: 'string', describe: 'aa:bb:cc:dd:ee:ff, or seed:STRING for a stable derived MAC' })
    .option('mtu', { type: 'string', describe: 'MTU (default: the bridge\'s / parent\'s)' })
    .option('route', { type: 'string', array: true, describe: 'extra route DST[@GW] via this interface (repeatable)' })
    .option('replace-gateway', { type: 'boolean', default: false, describe: 'replace an existing default route (detach restores it)' })
}

/** The parsed positional guest, IP specs and linkFlags of a link command; each adds its own. */
export interface LinkArgs extends GlobalArgs, DhcpArgs {
  guest: string
  ips?: string[]
  ifname?: string
  mac?: string
  mtu?: string
  route?: string[]
  replaceGateway: boolean
}

/** The options a link op takes from LinkArgs (the flags a command lacks are simply absent). */
export function linkOptions(args: LinkArgs, io: CliIo) {
  return {
    ...commonOptions(args, io),
    guest: String(args.guest),
    ips: strings(args.ips),
    routes: strings(args.route),
    replaceGateway: args.replaceGateway,
    ...dhcpOptions(args),
    ...defined({ ifname: args.ifname, mac: args.mac, mtu: args.mtu }),
  }
}

/** The parsed dhcpFlags (absent when not given). */
export interface DhcpArgs {
  dhcpClient?: string
  dhcpTimeout?: number
  hostname?: string
  resolv?: boolean
}

/** How the `dhcp` IP spec runs its client (the link commands' spelling of `plumb dhcp`'s flags). */
export function dhcpFlags<T>(y: Argv<T>) {
  return y
    .option('dhcp-client', { type: 'string', describe: 'with dhcp: auto | udhcpc | dhclient | dhcpcd (default auto)' })
    .option('dhcp-timeout', { type: 'number', describe: 'with dhcp: seconds to wait for a lease (default 10)' })
    .option('hostname', { type: 'string', describe: 'with dhcp: hostname to send to the server' })
    .option('resolv', { type: 'boolean', describe: "with dhcp: write the offered DNS servers into the guest's own /etc/resolv.conf" })
}

/** `{ dhcp: {...} }` from the dhcp flags the user gave, or nothing (the op's defaults apply). */
export function dhcpOptions(args: DhcpArgs): { dhcp?: DhcpLeaseOptions } {
  const o: DhcpLeaseOptions = defined({
    client: args.dhcpClient as DhcpClient | undefined,
    timeout: args.dhcpTimeout,
    hostname: args.hostname,
    resolv: args.resolv,
  })
  return Object.keys(o).length ? { dhcp: o } : {}
}

/** Drop the keys whose value is undefined: optional flags the user did not give stay absent. */
export function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> }
}

export const strings = (v: unknown): string[] => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String))

// What every command module shares: the flags each opts into, and running an op with rendering
// and the exit code it earns.

import type { Argv, Options } from 'yargs'
import { usageError } from '../errors.js'
import type { CommonOptions } from '../ops/context.js'
import type { DhcpClient, DhcpLeaseOptions } from '../ops/lease.js'
import type { OpResult } from '../ops/result.js'
import type { CliIo } from './io.js'
import { renderError, renderResult } from './render.js'

/** The flags a command may opt into (absent: the command does not take it). */
export interface GlobalArgs {
  json?: boolean
  dryRun?: boolean
  verbose?: boolean
  quiet?: boolean
  allowHost?: boolean
  /** --no-persist: false */
  persist?: boolean
}

/**
 * The flags shared by the commands. CLI.md promises --json, --dry-run, -v and -q on every
 * command, so scripts may always pass them; each command's help lists only those that mean
 * something for it (a `--dry-run` on `ls`, which changes nothing anyway, is accepted and not
 * shown). --allow-host is defined only where a guest is resolved. They are also known to the top
 * level (not global), so `plumb --json attach-veth ...` parses as well as `plumb attach-veth ... --json`.
 */
export const SHARED_FLAGS = {
  json: { type: 'boolean', describe: 'print a JSON result (errors as JSON on stderr)' },
  'dry-run': { type: 'boolean', describe: 'print the steps as ip/ovs-vsctl commands; change nothing' },
  verbose: { alias: 'v', type: 'boolean', describe: 'echo each step with its time on stderr' },
  quiet: { alias: 'q', type: 'boolean', describe: 'print nothing on success' },
  'allow-host': { type: 'boolean', describe: "allow a guest whose netns is the host's own (--net=host)" },
  persist: { type: 'boolean', default: true, describe: 'record what is done to a container, to replay it after a restart (--no-persist: do not)' },
} as const satisfies Record<string, Options>
export type SharedFlag = keyof typeof SHARED_FLAGS

/** What an operation on a guest takes: all of them. */
export const OP_FLAGS: SharedFlag[] = ['json', 'dry-run', 'verbose', 'quiet', 'allow-host', 'persist']

/** What CLI.md promises every command takes. */
export const CONTRACT_FLAGS: SharedFlag[] = ['json', 'dry-run', 'verbose', 'quiet']

/**
 * A command's builder starts here: the shared flags that mean something for it (default false,
 * but --persist's true; listed in its help), CLI.md's others accepted but not listed, and no `--version`, which is the
 * top level's (yargs makes it global).
 */
export function sharedFlags<T>(y: Argv<T>, names: SharedFlag[]): Argv<T> {
  for (const name of Object.keys(SHARED_FLAGS) as SharedFlag[]) {
    const takes = names.includes(name)
    if (!takes && !CONTRACT_FLAGS.includes(name)) continue
    y = y.option(name, { default: false, ...SHARED_FLAGS[name], ...(takes ? {} : { hidden: true }) })
  }
  return y.version(false)
}

/**
 * Refuse a single-valued flag given more than once (exit 2, naming it): yargs collects a
 * repeated flag into an array, which `--mac X --mac Y` would hand the op as a list. Run as
 * middleware, when the command's own options are known; flags declared `array` are meant to repeat.
 */
export function refuseRepeatedFlags(args: Record<string, unknown>, options: { key: Record<string, unknown>; array: string[]; alias: Record<string, string[]> }): void {
  const aliases = new Set(Object.values(options.alias).flat())
  for (const key of Object.keys(options.key)) {
    if (aliases.has(key) || options.array.includes(key)) continue
    const v = args[key]
    if (!Array.isArray(v) || v.length < 2) continue
    // booleans collapse (--json --json is true): only values given twice can disagree
    const short = options.alias[key]?.find((a) => a.length === 1)
    throw usageError(`--${key}${short ? ` (-${short})` : ''} given more than once (${v.map(String).join(', ')})`, `give --${key} once`)
  }
}

/** Set by a command's handler; read by main() once parsing is done. */
export interface CliState {
  exitCode: number
  io: CliIo
}

export function commonOptions(args: GlobalArgs, io: CliIo): CommonOptions {
  return {
    dryRun: args.dryRun ?? false,
    allowHost: args.allowHost ?? false,
    ...(args.persist === false ? { persist: false } : {}),
    ...(args.verbose ? { log: (line: string) => io.err(`+ ${line}`) } : {}),
  }
}

/**
 * The ops the commands call (./ops.ts), loaded by a handler when it runs: never by --help,
 * --version, completion or a usage error. In the CLI bundle this import is the ops bundle
 * (dist/plumb-ops.cjs, scripts/bundle.mjs).
 */
export const ops = (): Promise<typeof import('./ops.js')> => (opsModule ??= import('./ops.js'))
// One import per process: in the bundle each import() builds the module's namespace object anew
// (esbuild's __toESM, ~30 getters); the ops blob's builder made it, so its runs find it made.
let opsModule: Promise<typeof import('./ops.js')> | undefined

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
export async function runCustom<T>(state: CliState, args: GlobalArgs, op: () => Promise<T>, render: (r: T) => void | Promise<void>): Promise<void> {
  try {
    await render(await op())
    state.exitCode = state.exitCode || 0
  } catch (err) {
    state.exitCode = renderError(err, args, state.io)
  }
}

/** The IP-spec / link flags the link commands share (with the shared flags of an op). */
export function linkFlags<T>(y: Argv<T>) {
  return dhcpFlags(sharedFlags(y, OP_FLAGS))
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
  dhcpTimeout?: string
  hostname?: string
  resolv?: boolean
}

/** How the `dhcp` IP spec runs its client (the link commands' spelling of `plumb dhcp`'s flags). */
export function dhcpFlags<T>(y: Argv<T>) {
  return y
    .option('dhcp-client', { type: 'string', describe: 'with dhcp: auto | udhcpc | dhclient | dhcpcd (default auto)' })
    .option('dhcp-timeout', { type: 'string', describe: 'with dhcp: seconds to wait for a lease (default 10)' })
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

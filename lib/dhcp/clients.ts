// Which DHCP clients this host has, and the exact argv plumb runs each with inside a guest's netns.

import { accessSync, constants, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { unsupported, usageError } from '../errors.js'
import { statePaths } from './state.js'

export type DhcpClientKind = 'udhcpc' | 'dhclient' | 'dhcpcd'
export type DhcpClientChoice = 'auto' | DhcpClientKind
export const DHCP_CLIENT_KINDS: readonly DhcpClientKind[] = ['udhcpc', 'dhclient', 'dhcpcd']

/** A library caller's client name, checked: the type says DhcpClientChoice, JavaScript may not. */
export function checkClientChoice(choice: string): DhcpClientChoice {
  if (choice === 'auto' || (DHCP_CLIENT_KINDS as readonly string[]).includes(choice)) return choice as DhcpClientChoice
  throw usageError(`unknown DHCP client "${choice}"`, 'one of auto, udhcpc, dhclient, dhcpcd')
}

/** A client found on this host: the argv prefix that runs it (busybox needs its applet name). */
export interface ResolvedClient {
  kind: DhcpClientKind
  argv0: string[]
}

const DEBIAN_PACKAGE: Record<DhcpClientKind, string> = { udhcpc: 'udhcpc', dhclient: 'isc-dhcp-client', dhcpcd: 'dhcpcd-base' }
// sbin first: root's tools live there, and a user's PATH often lacks them
const SEARCH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

function searchPath(): string[] {
  const fromEnv = (process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/'))
  return [...new Set([...fromEnv, ...SEARCH_DIRS])]
}

/** Absolute path of an executable, or undefined. Sync: dhcpArgv (dry-run) must stay synchronous. */
export function which(name: string): string | undefined {
  for (const dir of searchPath()) {
    const p = join(dir, name)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      /* not here */
    }
  }
  return undefined
}

function busyboxWithUdhcpc(): string | undefined {
  const bb = which('busybox')
  if (!bb) return undefined
  // the applet table is in the binary; a cheap scan beats spawning `busybox --list`
  try {
    return readFileSync(bb).includes('udhcpc\0') ? bb : undefined
  } catch {
    return undefined
  }
}

function findSync(kind: DhcpClientKind): ResolvedClient | undefined {
  const p = which(kind)
  if (p) return { kind, argv0: [p] }
  if (kind === 'udhcpc') {
    const bb = busyboxWithUdhcpc()
    if (bb) return { kind, argv0: [bb, 'udhcpc'] }
  }
  return undefined
}

/** The clients installed here, as doctor shows them: name -> how it is run. */
export async function detectClients(): Promise<{ udhcpc?: string; dhclient?: string; dhcpcd?: string }> {
  const out: { udhcpc?: string; dhclient?: string; dhcpcd?: string } = {}
  for (const kind of ['udhcpc', 'dhclient', 'dhcpcd'] as const) {
    const c = findSync(kind)
    if (c) out[kind] = c.argv0.join(' ')
  }
  return out
}

/** auto = udhcpc, then dhclient, then dhcpcd; a missing client is UNSUPPORTED naming its package. */
export function resolveClient(choice: DhcpClientChoice = 'auto'): ResolvedClient {
  if (choice === 'auto') {
    for (const kind of ['udhcpc', 'dhclient', 'dhcpcd'] as const) {
      const c = findSync(kind)
      if (c) return c
    }
    throw unsupported('no DHCP client found (tried udhcpc, busybox udhcpc, dhclient, dhcpcd)', 'apt-get install udhcpc (or isc-dhcp-client, or dhcpcd-base)')
  }
  if (!(choice in DEBIAN_PACKAGE)) throw unsupported(`unknown DHCP client "${String(choice)}"`, 'one of auto, udhcpc, dhclient, dhcpcd')
  const c = findSync(choice)
  if (!c) throw unsupported(`DHCP client "${choice}" is not installed`, `apt-get install ${DEBIAN_PACKAGE[choice]}`)
  return c
}

export function resolveNsenter(): string {
  const p = which('nsenter')
  if (!p) throw unsupported('nsenter is not installed (plumb runs DHCP clients inside the guest through it)', 'apt-get install util-linux')
  return p
}

export interface ClientArgvInput {
  nsPath: string
  stateKey: string
  ifname: string
  hostname?: string
}

/** dhclient reads /etc/dhcp/dhclient.conf by default: this private one replaces it (-cf). */
export function dhclientConf(hostname?: string): string {
  return [
    '# plumb: a private dhclient.conf (the host\'s /etc/dhcp/dhclient.conf is not read)',
    'option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;',
    ...(hostname ? [`send host-name "${hostname.replace(/[^A-Za-z0-9.-]/g, '')}";`] : []),
    'request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, rfc3442-classless-static-routes, interface-mtu;',
    // retry quickly at first: plumb bounds the wait itself (--timeout)
    'initial-interval 1;',
    'backoff-cutoff 4;',
    'timeout 3600;',
    'retry 10;',
    '',
  ].join('\n')
}

/** The client's own argv (without nsenter), every file it writes pointed into the state dir. */
export function clientArgv(client: ResolvedClient, i: ClientArgvInput): string[] {
  const p = statePaths(i.stateKey, i.ifname)
  switch (client.kind) {
    case 'udhcpc':
      // -f: stay in the foreground under the supervisor; -s: plumb's hook, never default.script;
      // -t/-T/-A: discover every 2 s, pause 3 s after 5 tries (plumb bounds the wait itself);
      // -O staticroutes: ask for option 121, which udhcpc does not request by default
      return [...client.argv0, '-f', '-i', i.ifname, '-s', p.hook, '-t', '5', '-T', '2', '-A', '3', '-O', 'staticroutes', ...(i.hostname ? ['-x', `hostname:${i.hostname}`] : [])]
    case 'dhclient':
      // -cf/-lf/-pf: private conf, lease and pid files (never /etc/dhcp, /var/lib/dhcp, /run/dhclient.pid);
      // -sf: plumb's hook, never /sbin/dhclient-script; -d: foreground under the supervisor
      return [...client.argv0, '-4', '-d', '-cf', p.dhclientConf, '-lf', p.leaseFile, '-pf', p.clientPidFile, '-sf', p.hook, i.ifname]
    case 'dhcpcd':
      // -B: no background; -c: plumb's hook; --nohook resolv.conf: dhcpcd's own hooks stay off.
      // dhcpcd keeps its pid and lease under /run/dhcpcd and /var/lib/dhcpcd (compiled in): run it
      // in a private mount namespace with tmpfs over both, so nothing lands on the host.
      return [
        'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c',
        'mkdir -p /run/dhcpcd /var/lib/dhcpcd && mount -t tmpfs plumb-dhcpcd /run/dhcpcd && mount -t tmpfs plumb-dhcpcd /var/lib/dhcpcd && exec "$@"', 'plumb-dhcpcd',
        ...client.argv0, '-B', '-4', '--noipv4ll', '-f', '/dev/null', '-c', p.hook, ...(i.hostname ? ['-h', i.hostname] : []), i.ifname,
      ]
    default:
      throw usageError(`unknown DHCP client "${String((client as { kind: unknown }).kind)}"`, 'one of udhcpc, dhclient, dhcpcd')
  }
}

/** The full command the supervisor runs: the client entered into the guest's netns. */
export function nsenterArgv(nsenter: string, client: ResolvedClient, i: ClientArgvInput): string[] {
  return [nsenter, `--net=${i.nsPath}`, ...clientArgv(client, i)]
}

// Shared fixture of the ops tests: a per-test id with its netns/bridge names and address block,
// the CLI, and views of the host and guest narrowed to what one test owns (tests run in parallel,
// so a whole-host snapshot would see other tests' links come and go).

import { ipJson, makeNetns, runCli, sh, shQuiet, snapshot, uniq, reserveOctet } from '../helpers/index.js'
import type { CliResult, IpObject, Snapshot, Teardown } from '../helpers/index.js'
import { withFirewallLock } from '../../lib/ops/firewall.js'

export interface Fixture {
  /** pt-xxxxxx: every name of this test contains it */
  id: string
  /** the guest's ip netns name (= id) */
  ns: string
  /** `netns:<ns>` */
  guest: string
  /** a bridge name that does not exist yet */
  br: string
  /** third octet of this test's 198.18.X.0/24 */
  octet: number
  v4(host: number, prefix?: number): string
  v6(host: number, prefix?: number): string
  gw4: string
  gw6: string
}

/**
 * A fresh netns and names for one test. Registers first a sweep of everything plumb may have
 * made for it on the host (host ends and bridges carrying the id in their name or owner mark,
 * firewall rules for its bridges), so a failing test leaks nothing.
 */
export async function fixture(t: Teardown): Promise<Fixture> {
  const octet = reserveOctet(t) // first: released after the sweep below
  const id = uniq()
  t.teardown(() => sweepHost(id))
  const ns = await makeNetns(t, { name: id })
  const hex = octet.toString(16)
  return {
    id,
    ns,
    guest: `netns:${ns}`,
    br: `${id}b`,
    octet,
    v4: (h, p = 24) => `198.18.${octet}.${h}/${p}`,
    v6: (h, p = 64) => `2001:db8:${hex}::${h.toString(16)}/${p}`,
    gw4: `198.18.${octet}.1`,
    gw6: `2001:db8:${hex}::1`,
  }
}

/** Delete host links and firewall rules that belong to test `id` (idempotent). */
export async function sweepHost(id: string): Promise<void> {
  const links = await ipJson(['-d', 'link', 'show']).catch(() => [] as IpObject[])
  // ports first, then bridges
  const mine = links.filter((l) => String(l.ifname).includes(id) || String(l.ifalias ?? '').includes(id))
  mine.sort((a, b) => Number(a.linkinfo?.info_kind === 'bridge') - Number(b.linkinfo?.info_kind === 'bridge'))
  for (const l of mine) await shQuiet('ip', ['link', 'del', String(l.ifname)])
  await removeFirewallRules(id)
}

export async function removeFirewallRules(id: string): Promise<void> {
  // Under plumb's firewall lock: a gc of another test removing the same rule in the same instant
  // would otherwise fail its batch (its -D finds the rule gone).
  await withFirewallLock(false, async () => {
    for (const bin of ['iptables', 'ip6tables']) {
      const rules = await firewallRules(bin, id)
      for (const rule of rules) {
        const args = rule.replace(/^-A /, '-D ').match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''))
        await shQuiet(bin, ['-w', ...args])
      }
    }
  })
  await dropEmptyPlumbChains()
}

// Under plumb's firewall lock, so no plumb is adding a rule to a chain between the check and the -X.
const DROP_EMPTY = `for b in iptables ip6tables; do for tc in filter:PLUMB-FORWARD nat:PLUMB-DNAT nat:PLUMB-POSTROUTING; do
  t=\${tc%%:*}; c=\${tc#*:}
  "$b" -w -t "$t" -S "$c" >/dev/null 2>&1 || continue
  "$b" -w -t "$t" -S "$c" | grep -q '^-A' && continue
  "$b" -w -t "$t" -S | grep -- "-j $c\$" | sed 's/^-A /-D /' | while read -r rule; do eval "$b -w -t $t $rule"; done
  "$b" -w -t "$t" -X "$c"
done; done`

/** A sweep that removed plumb rules by hand may leave plumb's chains empty: they go too, as plumb's last rule takes them. */
export async function dropEmptyPlumbChains(): Promise<void> {
  await shQuiet('flock', ['-w', '10', '/run/plumb/firewall.lock', 'sh', '-c', DROP_EMPTY])
}

/** `iptables -S` lines whose comment names test `id` (plumb's rules are commented plumb:BRIDGE). */
export async function firewallRules(bin: string, id: string): Promise<string[]> {
  return rulesNaming((await shQuiet(bin, ['-w', '-S'])).stdout, id)
}

const rulesNaming = (text: string, id: string): string[] => text.split('\n').filter((l) => l.startsWith('-A ') && l.includes(`plumb:${id}`))

/** firewallRules of iptables, then of ip6tables, from one spawn of ours (a shell runs both: a spawn costs this process a fork of itself). */
async function bothFamiliesRules(id: string): Promise<string[]> {
  return rulesNaming((await shQuiet('sh', ['-c', 'iptables -w -S; ip6tables -w -S'])).stdout, id)
}

/** Docker's FORWARD DROP is active for bridged IPv4 frames: plumb must add its ACCEPT rule. */
export async function forwardDropActive(): Promise<boolean> {
  const brnf = await shQuiet('cat', ['/proc/sys/net/bridge/bridge-nf-call-iptables'])
  if (brnf.stdout.trim() !== '1') return false
  const fwd = await shQuiet('iptables', ['-w', '-S', 'FORWARD'])
  return /^-P FORWARD DROP$/m.test(fwd.stdout)
}

const touches = (o: IpObject, names: Set<string>, id: string): boolean =>
  names.has(String(o.ifname ?? o.dev ?? '')) || JSON.stringify(o).includes(id)

// What the kernel changes by itself, not plumb: IPv6 link-local addresses and their routes come
// and go with carrier (addrconf, asynchronously); a route's `linkdown` follows carrier; and a
// bridge's MAC and offload limits follow its ports (with no port left its MAC is zeroed), so a
// bridge that gained and lost a port is as it was in every way a user configures.
const BRIDGE_DERIVED = new Set(['address', 'tso_max_size', 'tso_max_segs', 'gso_max_size', 'gso_max_segs', 'gso_ipv4_max_size', 'gro_max_size', 'gro_ipv4_max_size'])
const linkLocal6 = (dst: unknown): boolean => typeof dst === 'string' && /^(fe80:|ff00::)/.test(dst)

export function stable(s: Snapshot): Snapshot {
  return {
    // by name: the kernel's dump order of a netns with thousands of ifindexes is not creation order
    links: s.links
      .map((l) => (l.linkinfo?.info_kind === 'bridge' ? Object.fromEntries(Object.entries(l).filter(([k]) => !BRIDGE_DERIVED.has(k))) : l))
      .sort((a, b) => String(a.ifname).localeCompare(String(b.ifname))),
    addrs: s.addrs.filter((a) => !(a.family === 'inet6' && a.scope === 'link')),
    routes: s.routes
      .filter((r) => !linkLocal6(r.dst) && r.type !== 'multicast')
      .map((r) => (Array.isArray(r.flags) ? { ...r, flags: (r.flags as string[]).filter((x) => x !== 'linkdown') } : r)),
  }
}

/**
 * The host's links, addresses and routes that concern test `id`: links whose name, alias or
 * master names it, and the addresses/routes on them; plus plumb's firewall rules for it.
 */
export async function hostView(id: string): Promise<Snapshot & { rules: string[] }> {
  const s = await snapshot({}, (raw) => {
    const links = raw.links.filter((l) => JSON.stringify([l.ifname, l.ifalias, l.master]).includes(id))
    const names = new Set(links.map((l) => String(l.ifname)))
    return { links, addrs: raw.addrs.filter((a) => touches(a, names, id)), routes: raw.routes.filter((r) => touches(r, names, id)) }
  })
  return { ...stable(s), rules: await bothFamiliesRules(id) }
}

/** Everything in the guest's netns, sysctls excluded. */
export const guestView = async (ns: string): Promise<Snapshot> => stable(await snapshot({ netns: ns }))

/** Both sides at once, for `t.deepEqual(before, after)`. */
export async function views(f: Pick<Fixture, 'id' | 'ns'>): Promise<{ host: Awaited<ReturnType<typeof hostView>>; guest: Snapshot }> {
  const [host, guest] = await Promise.all([hostView(f.id), guestView(f.ns)])
  return { host, guest }
}

/** The real CLI (dist/plumb.cjs). */
export const plumb = (...args: string[]): Promise<CliResult> => runCli(args)

/** Parsed `ip -j -d link show` of the guest, by name. */
export async function guestLinks(ns: string): Promise<Map<string, IpObject>> {
  return new Map((await ipJson(['-d', 'link', 'show'], ns)).map((l) => [String(l.ifname), l]))
}

/** `ADDR/PREFIX` strings on an interface (link-local IPv6 left out). */
export async function addrsOf(ifname: string, ns?: string): Promise<string[]> {
  const objs = await ipJson(['addr', 'show', 'dev', ifname], ns)
  return objs.flatMap((o) => (o.addr_info as IpObject[]).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`)).sort()
}

/** Routes of the main table in the guest, as `ip -j route` objects of both families. */
export async function routesOf(ns: string): Promise<IpObject[]> {
  return [...(await ipJson(['-4', 'route', 'show'], ns)), ...(await ipJson(['-6', 'route', 'show'], ns))]
}

export const defaultRoutes = async (ns: string): Promise<IpObject[]> => (await routesOf(ns)).filter((r) => r.dst === 'default')

/** A veth end inside the guest that plumb did not make, up, optionally with an address: the "existing NIC". */
export async function foreignNic(t: Teardown, f: Fixture, name: string, addr?: string): Promise<string> {
  const host = `${f.id}x`
  t.teardown(async () => void (await shQuiet('ip', ['link', 'del', host])))
  await sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', name, 'netns', f.ns])
  await sh('ip', ['link', 'set', host, 'up'])
  await sh('ip', ['-n', f.ns, 'link', 'set', name, 'up'])
  if (addr) await sh('ip', ['-n', f.ns, 'addr', 'add', addr, 'dev', name])
  return name
}

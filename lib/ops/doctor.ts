// doctor: what this host supports, each check with a verdict and, where it fails, the fix.

// Sync fs: a handful of tiny checks, and node:fs/promises is not worth loading on every CLI start.
import { accessSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../paths.js'
import { findOnPath } from '../proc.js'
import { SNAPSHOT_BLOB, SNAPSHOT_CNI_BLOB, SNAPSHOT_NODE_FLAGS, SNAPSHOT_OPS_BLOB, SNAPSHOT_TRAINED_DRY, codeCacheFile, compileBundle, fromSnapshot, snapshotTraining, snapshotVerdict } from '../snapshot.js'

export interface DoctorCheck {
  name: string
  ok: boolean
  /** ok, or what is missing */
  detail: string
  /** how to fix it, when not ok */
  hint?: string
  /** informational: a missing optional piece is not a failure of the host */
  optional?: boolean
}

export interface DoctorReport {
  ok: boolean
  checks: DoctorCheck[]
}

function exists(path: string): boolean {
  try {
    accessSync(path)
    return true
  } catch {
    return false
  }
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return fallback
  }
}

/**
 * The CLI's V8 code caches, as this run reads them (lib/snapshot.ts's codeCacheFile): the ops and
 * lab bundles' (dist/plumb-ops.cjs, dist/plumb-lab.cjs), and the command line's when not started
 * from the snapshot. V8
 * rejects one made by another node binary or under other flags, and every command then compiles
 * the bundle again (~15 ms for the ops). Only where the bundles are (an installed package, a
 * build), not for a library checkout without them.
 */
function codeCacheCheck(): DoctorCheck | undefined {
  const dist = join(packageRoot(), 'dist')
  const bundles = [...(fromSnapshot() ? [] : ['plumb-cli.cjs']), 'plumb-ops.cjs', 'plumb-lab.cjs'].map((f) => join(dist, f))
  if (!bundles.every(exists)) return undefined
  const name = 'CLI code cache'
  const hint = 'rebuild it with the node that runs plumb: npm run build'
  const caches = bundles.map(codeCacheFile)
  try {
    const compiled = bundles.map(compileBundle)
    const missing = caches.filter((_, i) => !compiled[i]!.cached)
    if (missing.length) return { name, ok: false, optional: true, detail: `no usable code cache: no ${missing.join(', ')}`, hint }
    const rejected = caches.filter((_, i) => compiled[i]!.script.cachedDataRejected)
    return rejected.length
      ? { name, ok: false, optional: true, detail: `V8 rejects ${rejected.join(', ')} (made by another node or with other flags): every command compiles the CLI again`, hint }
      : { name, ok: true, optional: true, detail: `${caches.join(', ')} accepted: commands start without compiling the CLI` }
  } catch (err) {
    return { name, ok: false, optional: true, detail: `no usable code cache: ${(err as Error).message}`, hint }
  }
}

/**
 * The `plumb` command's start-up snapshot (dist/plumb.blob, native/launcher.c): whether a command starts
 * from it, and if not why (start-up-bound runs such as --help then cost ~35% more of plumb's own
 * start-up work: bench/README.md). When the launcher would offer
 * it, one run from it is tried: V8's own words if node refuses it after all.
 */
export async function snapshotCheck(dist = join(packageRoot(), 'dist')): Promise<DoctorCheck | undefined> {
  if (!exists(join(dist, 'plumb'))) return undefined
  const name = 'CLI start-up snapshot'
  const hint = 'rebuild it with the node on PATH: npm run build'
  const node = await onPath('node')
  const verdict = snapshotVerdict(dist, node, process.env)
  if (!verdict.used) return { name, ok: false, optional: true, detail: `not used, commands start from the code cache (slower): ${verdict.why}`, hint }
  const { run } = await import('../proc.js')
  const tryBlob = (blob: string, args = ['--version'], env: Record<string, string> = {}) =>
    run(node!, [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', join(dist, blob), join(dist, 'plumb.cjs'), ...args], { env, input: '' }).catch((err: Error) => ({ exitCode: -1, stdout: '', stderr: err.message }))
  const tried = await tryBlob(SNAPSHOT_BLOB)
  if (tried.exitCode !== 0) return { name, ok: false, optional: true, detail: `node refuses it (exit ${tried.exitCode}): ${tried.stderr.trim().split('\n')[0]}`, hint }
  // the second blob, with the ops loaded: the launcher falls back to the first without it
  if (!exists(join(dist, SNAPSHOT_OPS_BLOB))) return { name, ok: false, optional: true, detail: `half in use: ${verdict.why}; no ${join(dist, SNAPSHOT_OPS_BLOB)}: ops load from their code cache (slower)`, hint }
  const triedOps = await tryBlob(SNAPSHOT_OPS_BLOB)
  if (triedOps.exitCode !== 0) return { name, ok: false, optional: true, detail: `node refuses ${join(dist, SNAPSHOT_OPS_BLOB)} (exit ${triedOps.exitCode}): ${triedOps.stderr.trim().split('\n')[0]}`, hint }
  const inUse = `in use: ${verdict.why}; ops start from ${SNAPSHOT_OPS_BLOB}${trainingNote(dist)}`
  // the CNI plugin's, asked what a runtime asks first (its answer is the versions it speaks)
  if (!exists(join(dist, SNAPSHOT_CNI_BLOB))) return { name, ok: false, optional: true, detail: `${inUse}; no ${join(dist, SNAPSHOT_CNI_BLOB)}: CNI calls load the plugin from its code cache (slower)`, hint }
  const triedCni = await tryBlob(SNAPSHOT_CNI_BLOB, [], { CNI_COMMAND: 'VERSION' })
  if (triedCni.exitCode !== 0 || !triedCni.stdout.includes('"supportedVersions"')) {
    return { name, ok: false, optional: true, detail: `${inUse}; node refuses ${join(dist, SNAPSHOT_CNI_BLOB)} (exit ${triedCni.exitCode}): ${(triedCni.stderr.trim() || triedCni.stdout.trim()).split('\n')[0]}`, hint }
  }
  return { name, ok: true, optional: true, detail: `${inUse}; CNI calls from ${SNAPSHOT_CNI_BLOB}` }
}

/** How the build trained the ops blob (the stamp's second line), with what it costs when not on real ops. */
function trainingNote(dist: string): string {
  const how = snapshotTraining(dist)
  if (!how) return ''
  return how.startsWith(SNAPSHOT_TRAINED_DRY) ? ` (${how}: a first op compiles more, ~2 ms a run; build as root for real ones)` : ` (${how})`
}

/** A program on PATH (the usual system directories when PATH is unset). */
const onPath = async (bin: string): Promise<string | undefined> => findOnPath(bin, process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')

export async function doctor(): Promise<DoctorReport> {
  const checks: DoctorCheck[] = []
  const add = (c: DoctorCheck): void => void checks.push(c)

  const root = process.geteuid?.() === 0
  add({ name: 'privileges', ok: root, detail: root ? 'running as root' : 'not root', ...(root ? {} : { hint: 'plumb needs CAP_NET_ADMIN and CAP_SYS_ADMIN: run it with sudo' }) })

  const kernel = await import('../kernel/index.js')
  try {
    const fd = kernel.openNetnsFd('/proc/self/ns/net')
    try {
      const h = kernel.openHandleIn(fd, 'self')
      h.close()
    } finally {
      kernel.closeFd(fd)
    }
    add({ name: 'setns addon', ok: true, detail: 'loaded; netlink sockets can be opened inside a guest netns' })
  } catch (err) {
    add({ name: 'setns addon', ok: false, detail: (err as Error).message, hint: 'rebuild it: npm rebuild (needs g++, make, python3)' })
  }
  const cache = codeCacheCheck()
  if (cache) add(cache)
  const snapshot = await snapshotCheck()
  if (snapshot) add(snapshot)
  // plumb as a CNI plugin, where runtimes look by default: is the launcher there this plumb's?
  const { launcherState } = await import('../cni/install.js')
  const launcher = launcherState()
  if (launcher) {
    add({
      name: 'CNI launcher',
      ok: launcher.current,
      optional: true,
      detail: launcher.current ? `${launcher.file} runs this plumb` : `${launcher.file} was written by another plumb version or for another node (an older one runs the CNI plugin without its start-up snapshot)`,
      ...(launcher.current ? {} : { hint: 'write it again: plumb cni install' }),
    })
  }

  for (const kind of ['veth', 'bridge', 'macvlan', 'vlan', 'vxlan', 'ipvlan', 'dummy'] as const) {
    const res = await kernel.probeLinkKind(kind)
    const essential = kind === 'veth' || kind === 'bridge'
    add({
      name: `link kind ${kind}`,
      ok: res,
      detail: res ? 'supported' : 'not in this kernel',
      ...(res ? {} : { hint: kind === 'vlan' ? 'plumb vlan on a NIC needs 8021q; OVS access ports (plumb ovs-port --tag) work without it' : `needs the kernel's ${kind} support` }),
      ...(essential ? {} : { optional: true }),
    })
  }


  const ovs = await import('../ovs/index.js')
  const o = await ovs.ovsAvailable().catch((err: Error) => ({ ok: false, reason: err.message }) as { ok: boolean; version?: string; reason?: string })
  add({ name: 'Open vSwitch', ok: o.ok, detail: o.ok ? `Open vSwitch ${o.version ?? ''} reachable (ovsdb-server and ovs-vswitchd)` : (o.reason ?? 'unavailable'), optional: true, ...(o.ok ? {} : { hint: 'apt-get install openvswitch-switch; /usr/share/openvswitch/scripts/ovs-ctl start' }) })
  const ovsModule = exists('/sys/module/openvswitch')
  add({ name: 'OVS datapath', ok: true, detail: ovsModule ? 'kernel datapath (openvswitch module loaded)' : 'no openvswitch kernel module: plumb creates bridges with the userspace datapath (datapath_type=netdev)', optional: true })

  const dhcp = await import('../dhcp/index.js')
  const clients = await dhcp.detectClients().catch(() => ({}) as Record<string, string | undefined>)
  const found = Object.entries(clients).filter(([, p]) => p)
  add({ name: 'DHCP clients', ok: found.length > 0, detail: found.length ? found.map(([n, p]) => `${n} (${p})`).join(', ') : 'none', optional: true, ...(found.length ? {} : { hint: 'apt-get install udhcpc (or isc-dhcp-client)' }) })

  const nsenter = await onPath('nsenter')
  add({ name: 'nsenter', ok: !!nsenter, detail: nsenter ?? 'missing (plumb exec and DHCP need it)', ...(nsenter ? {} : { hint: 'apt-get install util-linux' }) })
  // plumb lab check probes with the host's ping; lab graph --format svg draws with Graphviz's dot
  for (const [tool, what, pkg] of [['ping', 'lab check: ping checks', 'iputils-ping'], ['dot', 'lab graph --format svg', 'graphviz']] as const) {
    const at = await onPath(tool)
    add({ name: tool, ok: !!at, detail: at ?? `missing (${what} need${tool === 'dot' ? 's' : ''} it)`, optional: true, ...(at ? {} : { hint: `apt-get install ${pkg}` }) })
  }

  const conntrack = await onPath('conntrack')
  add({ name: 'conntrack', ok: !!conntrack, optional: true, detail: conntrack ?? 'missing (plumb expose needs it to forget the flows of a port it (un)publishes)', ...(conntrack ? {} : { hint: 'apt-get install conntrack' }) })

  const target = await import('../guest/index.js')
  const docker = await target.engineStatus('docker')
  add({ name: 'Docker', ok: docker.ok, detail: docker.detail, optional: true, ...(docker.ok ? {} : { hint: 'start dockerd (or set DOCKER_HOST=unix://...)' }) })
  const podman = await target.engineStatus('podman')
  add({ name: 'Podman', ok: podman.ok, detail: podman.detail, optional: true })

  const brnf = readOr('/proc/sys/net/bridge/bridge-nf-call-iptables', '0').trim() === '1'
  if (brnf) {
    const fw = await import('../firewall/index.js')
    try {
      const { rules } = await fw.bridgeFirewall('plumb-doctor')
      const drop = rules.length > 0
      add({
        name: 'br_netfilter + FORWARD',
        ok: true,
        detail: drop ? `br_netfilter is on and the FORWARD policy is DROP: plumb adds an ACCEPT rule per bridge in PLUMB-FORWARD, hooked from ${rules[0]!.hook} (--no-firewall to opt out)` : 'br_netfilter is on; FORWARD does not drop',
      })
    } catch (err) {
      add({ name: 'br_netfilter + FORWARD', ok: false, detail: `br_netfilter is on, and the firewall could not be read: ${err instanceof Error ? err.message : String(err)}` })
    }
  } else {
    add({ name: 'br_netfilter + FORWARD', ok: true, detail: 'br_netfilter off: bridged traffic does not traverse iptables' })
  }
  return { ok: checks.every((c) => c.ok || c.optional), checks }
}

export function formatDoctor(r: DoctorReport): string {
  return [
    ...r.checks.map((c) => `${c.ok ? 'ok  ' : c.optional ? 'info' : 'FAIL'}  ${c.name}: ${c.detail}${!c.ok && c.hint ? `\n      hint: ${c.hint}` : ''}`),
    r.ok ? 'plumb can work on this host' : 'plumb cannot work fully on this host: see FAIL above',
  ].join('\n')
}

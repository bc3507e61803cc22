// Throwaway kernel objects for tests (ip netns, veth pairs standing in for NICs, Linux bridges), each
// deleted in teardown, and the shell/`ip -j` plumbing to read kernel state back.

import { execa } from 'execa'
import type { Options } from 'execa'
import { execFileSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { uniq } from './env.js'
import type { Teardown } from './env.js'

/** Where a command runs: the host (undefined), an `ip netns` name, a netns file, a pid or a container. */
export type NsTarget = string | { netns?: string; path?: string; pid?: number; container?: string } | undefined

/** Run a program (no shell), return its trimmed stdout; throws with its stderr on a non-zero exit. */
export async function sh(cmd: string, args: string[] = [], opts: Options = {}): Promise<string> {
  const res = await execa(cmd, args, { timeout: 30_000, ...opts, stripFinalNewline: true })
  return String(res.stdout ?? '').trim()
}

/** Like sh, but never throws: for teardown steps whose object may already be gone. */
export async function shQuiet(cmd: string, args: string[] = []): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const res = await execa(cmd, args, { reject: false, timeout: 30_000 })
  return { exitCode: res.exitCode ?? -1, stdout: String(res.stdout ?? ''), stderr: String(res.stderr ?? '') }
}

/** The netns file of a target: /run/netns/NAME, the path itself, /proc/PID/ns/net, or a container's init's. */
export function nsPath(target: NonNullable<NsTarget>): string {
  if (typeof target === 'string') return `/run/netns/${target}`
  if (target.path) return target.path
  if (target.netns) return `/run/netns/${target.netns}`
  if (target.pid) return `/proc/${target.pid}/ns/net`
  if (target.container) {
    // Sync and uncached on purpose: a restarted container has a new pid.
    const pid = execFileSync('docker', ['inspect', '-f', '{{.State.Pid}}', target.container], { encoding: 'utf8' }).trim()
    if (!/^[1-9]\d*$/.test(pid)) throw new Error(`container "${target.container}" is not running (pid ${pid})`)
    return `/proc/${pid}/ns/net`
  }
  throw new Error('empty netns target: give netns, path, pid or container')
}

/**
 * argv prefix that runs a command inside the target's netns. nsenter --net only (no mount ns,
 * unlike `ip netns exec`), so the command sees the host's files and host binaries.
 */
export function nsArgv(target: NsTarget, cmd: string, args: string[]): [string, string[]] {
  if (target === undefined) return [cmd, args]
  return ['nsenter', [`--net=${nsPath(target)}`, '--', cmd, ...args]]
}

/** sh() inside a netns (host binaries). */
export async function shIn(target: NsTarget, cmd: string, args: string[] = [], opts: Options = {}): Promise<string> {
  const [c, a] = nsArgv(target, cmd, args)
  return sh(c, a, opts)
}

// `ip -j` objects are loosely typed by nature: tests index them by iproute2's field names.
export type IpObject = Record<string, any>

/** `ip ARGS` in the host or a netns: `ip -n` is cheapest for a named netns; anything else goes through nsenter. */
function ipIn(netns: NsTarget, args: string[]): [string, string[]] {
  return typeof netns === 'string' ? ['ip', ['-n', netns, ...args]] : nsArgv(netns, 'ip', args)
}

/** `ip -j ARGS` parsed, in the host or a netns: `ipJson(['addr', 'show', 'dev', 'eth1'], 'pt-ab12cd')`. */
export async function ipJson(args: string[], netns?: NsTarget): Promise<IpObject[]> {
  const out = await sh(...ipIn(netns, ['-j', ...args]))
  // Some `ip` subcommands print nothing (not "[]") when there is nothing to show.
  return out === '' ? [] : (JSON.parse(out) as IpObject[])
}

/**
 * Several `ip -j` commands (`ip OPTS -j -batch -`, one line each) in one process, parsed: each
 * prints its JSON on a line of its own ("[]" when it has nothing to show). One spawn instead of
 * one a command: a spawn costs the test process a fork of itself, the suite's largest cost.
 */
export async function ipBatchJson(commands: string[], netns?: NsTarget, opts: string[] = []): Promise<IpObject[][]> {
  const lines = (await sh(...ipIn(netns, [...opts, '-j', '-batch', '-']), { input: commands.map((c) => `${c}\n`).join('') })).split('\n').filter((l) => l !== '')
  if (lines.length !== commands.length) throw new Error(`ip -batch printed ${lines.length} lines for ${commands.length} commands (${commands.join('; ')}):\n${lines.join('\n')}`)
  return lines.map((l) => JSON.parse(l) as IpObject[])
}

/** Whether each port of bridge `br` is an isolated bridge port, as the kernel says (`ip -d link show master`). */
export async function isolatedPorts(br: string, netns?: NsTarget): Promise<boolean[]> {
  return (await ipJson(['-d', 'link', 'show', 'master', br], netns)).map((l) => l.linkinfo?.info_slave_data?.isolated === true)
}

/** One link's `ip -j -d link show` object, or undefined when absent. */
export async function getLink(name: string, netns?: NsTarget): Promise<IpObject | undefined> {
  const links = await ipJson(['-d', 'link', 'show'], netns)
  return links.find((l) => l.ifname === name)
}

/** A fresh `ip netns add pt-xxxxxx` (lo left down, as a new netns is), deleted in teardown. */
export async function makeNetns(t: Teardown, opts: { name?: string; loUp?: boolean } = {}): Promise<string> {
  const name = opts.name ?? uniq()
  await sh('ip', ['netns', 'add', name])
  t.teardown(async () => {
    await shQuiet('ip', ['netns', 'del', name])
  })
  if (opts.loUp) await sh('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  return name
}

/**
 * A new `ip netns` given inode `ino` again (the kernel gives the lowest free inode to the next
 * netns made, so a freed one's goes to the next netns at once on a quiet host). Beside other
 * tests making netns, the netns made here are held until one has it: each takes the lowest free
 * inode, so they walk up to `ino` as soon as it is freed, before another test's netns can take
 * it. Undefined after `ms` or 200 netns. Deleted in teardown; the others made on the way at once.
 */
export async function netnsWithInode(t: Teardown, ino: number, ms = 20_000): Promise<string | undefined> {
  const held: string[] = []
  let found: string | undefined
  try {
    for (const end = Date.now() + ms; !found && Date.now() < end && held.length < 200; ) {
      const name = uniq()
      await sh('ip', ['netns', 'add', name])
      const got = statSync(`/run/netns/${name}`).ino
      if (got === ino) found = name
      else {
        held.push(name)
        // past it: not freed yet (a deleted netns is torn down a moment later), or taken
        if (got > ino) await new Promise((r) => setTimeout(r, 20))
      }
    }
  } finally {
    for (const n of held) await shQuiet('ip', ['netns', 'del', n])
  }
  if (found) t.teardown(async () => void (await shQuiet('ip', ['netns', 'del', found])))
  return found
}

/**
 * A veth pair standing in for a physical NIC (the kernel here has no dummy): `nameA` in the host,
 * `nameB` in the host or in netns `nsB`, both up. Deleted in teardown (from whichever end is
 * still findable: a test may have moved one end).
 */
export async function makeVethPair(t: Teardown, nameA: string, nameB: string, nsB?: string): Promise<{ a: string; b: string; nsB?: string }> {
  await sh('ip', ['link', 'add', nameA, 'type', 'veth', 'peer', 'name', nameB, ...(nsB ? ['netns', nsB] : [])])
  t.teardown(async () => {
    const r = await shQuiet('ip', ['link', 'del', nameA])
    if (r.exitCode !== 0) await shQuiet('ip', [...(nsB ? ['-n', nsB] : []), 'link', 'del', nameB])
  })
  await sh('ip', ['link', 'set', nameA, 'up'])
  await sh('ip', [...(nsB ? ['-n', nsB] : []), 'link', 'set', nameB, 'up'])
  return nsB ? { a: nameA, b: nameB, nsB } : { a: nameA, b: nameB }
}

/** A Linux bridge in the host (or netns), up unless `up: false`, deleted in teardown. */
export async function makeBridge(t: Teardown, name: string, opts: { netns?: string; up?: boolean; vlanFiltering?: boolean } = {}): Promise<string> {
  const n = opts.netns ? ['-n', opts.netns] : []
  await sh('ip', [...n, 'link', 'add', name, 'type', 'bridge', ...(opts.vlanFiltering ? ['vlan_filtering', '1'] : [])])
  t.teardown(async () => {
    await shQuiet('ip', [...n, 'link', 'del', name])
  })
  if (opts.up !== false) await sh('ip', [...n, 'link', 'set', name, 'up'])
  return name
}

/** An OVS bridge on the userspace datapath (no kernel module here), deleted in teardown. */
export async function makeOvsBridge(t: Teardown, name: string): Promise<string> {
  await sh('ovs-vsctl', ['--timeout=10', 'add-br', name, '--', 'set', 'bridge', name, 'datapath_type=netdev'])
  t.teardown(async () => {
    await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', name])
  })
  return name
}

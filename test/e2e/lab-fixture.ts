// Shared pieces of the lab tests: a scratch dir for lab files, a teardown that destroys the lab
// and sweeps whatever carries the test's id, and views of what a lab left on the host (read from
// docker, ip, ovs-vsctl and iptables-save, never from plumb).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { forgetRecordsNamed, hasBinary, hasOvs, runCli, sh, shQuiet, uniq } from '../helpers/index.js'
import type { CliResult, Teardown } from '../helpers/index.js'

export interface LabFixture {
  /** `pt-xxxxxx`: the lab's name, its containers' and netns' prefix (prefix: __lab-name) */
  id: string
  dir: string
  /** write a lab file; returns its path */
  write(name: string, text: string): string
  plumb(...args: string[]): Promise<CliResult>
}

export function labFixture(t: Teardown): LabFixture {
  const id = uniq()
  const dir = mkdtempSync(`/tmp/${id}-`)
  const written: string[] = []
  t.teardown(async () => {
    // The lab's own destroy first (it knows what it made), then anything else named after the test.
    for (const f of written.reverse()) await runCli(['lab', 'destroy', f, '-q'])
    await sweep(id)
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    id,
    dir,
    write(name, text) {
      const p = join(dir, name)
      writeFileSync(p, text)
      written.push(p)
      return p
    },
    plumb: (...args) => runCli(args, { cwd: dir }),
  }
}

/** Remove what carries `id` (containers, netns, links, OVS bridges, firewall rules). */
export async function sweep(id: string): Promise<void> {
  const left = await leftovers(id)
  for (const c of left.containers) {
    await shQuiet('docker', ['rm', '-f', '-v', c])
    forgetRecordsNamed(c)
  }
  for (const n of left.netns) await shQuiet('ip', ['netns', 'del', n])
  for (const l of left.links) await shQuiet('ip', ['link', 'del', l])
  for (const b of left.ovs) await shQuiet('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', b])
  for (const r of left.rules) await shQuiet('sh', ['-c', `iptables -w ${r.replace(/^-A /, '-D ')}`])
}

export interface Leftovers {
  containers: string[]
  netns: string[]
  /** host links named after the test or whose plumb alias names it */
  links: string[]
  ovs: string[]
  rules: string[]
}

/** Everything on the host that names `id`. */
export async function leftovers(id: string): Promise<Leftovers> {
  const lines = (s: string): string[] => s.split('\n').map((l) => l.trim()).filter(Boolean)
  const docker = hasBinary('docker') ? lines((await shQuiet('docker', ['ps', '-a', '--format', '{{.Names}} {{.Labels}}'])).stdout) : []
  const links = JSON.parse((await sh('ip', ['-j', '-d', 'link', 'show'])) || '[]') as Array<{ ifname: string; ifalias?: string }>
  return {
    containers: docker.filter((l) => l.startsWith(id) || l.includes(`plumb.lab=${id}`)).map((l) => l.split(' ')[0]!),
    netns: lines((await shQuiet('ip', ['netns', 'list'])).stdout).map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(id)),
    links: links.filter((l) => l.ifname.startsWith(id) || l.ifalias?.includes(id)).map((l) => l.ifname),
    ovs: hasOvs() ? lines((await shQuiet('ovs-vsctl', ['--timeout=5', 'list-br'])).stdout).filter((b) => b.startsWith(id)) : [],
    rules: lines((await shQuiet('iptables-save', [])).stdout).filter((r) => r.startsWith('-A') && r.includes(id)),
  }
}

export const nothingLeft: Leftovers = { containers: [], netns: [], links: [], ovs: [], rules: [] }

/** Container name -> its state and labels, for the lab's containers. */
export async function labContainers(id: string): Promise<Map<string, { running: boolean; labels: Record<string, string>; privileged: boolean; capAdd: string[] | null }>> {
  const names = (await shQuiet('docker', ['ps', '-a', '--filter', `label=plumb.lab=${id}`, '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean)
  const out = new Map<string, { running: boolean; labels: Record<string, string>; privileged: boolean; capAdd: string[] | null }>()
  if (names.length === 0) return out
  const rows = JSON.parse(await sh('docker', ['inspect', ...names])) as Array<{ Name: string; State: { Running: boolean }; Config: { Labels: Record<string, string> }; HostConfig: { Privileged: boolean; CapAdd: string[] | null } }>
  for (const r of rows) out.set(r.Name.replace(/^\//, ''), { running: r.State.Running, labels: r.Config.Labels, privileged: r.HostConfig.Privileged, capAdd: r.HostConfig.CapAdd })
  return out
}

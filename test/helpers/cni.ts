// A small CNI runtime for tests, driving plugin binaries exactly as the spec (and libcni) does:
// the plugin found by its type in the bin dirs, CNI_* variables, the network config on stdin,
// the result (or error object) on stdout; VERSION asked first and a config version the plugin
// does not speak refused; a conflist run in order on ADD and CHECK and in reverse on DEL, each
// plugin given the one before's result as prevResult and only the capabilities it declares in
// runtimeConfig; ADD's result kept for DEL and CHECK; GC with both attachment keys, as libcni.

import { execa } from 'execa'
import { accessSync, constants } from 'node:fs'
import { join } from 'node:path'

/** The reference plugins (Debian's containernetworking-plugins). */
export const REFERENCE_PLUGINS = '/usr/lib/cni'

export interface PluginRun {
  exitCode: number
  stdout: string
  stderr: string
  /** stdout parsed, when it is JSON */
  json?: any
}

export interface Call {
  containerId?: string
  netns?: string
  ifname?: string
  args?: string
}

/** A plugin's error object (or a broken answer), as a runtime reports it. */
export class CniCallError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly run: PluginRun,
  ) {
    super(`${plugin} ${command} failed (exit ${run.exitCode}): ${run.json?.msg ?? run.stdout}${run.json?.details ? ` (${run.json.details})` : ''}`)
  }

  get code(): number | undefined {
    return this.run.json?.code
  }
}

export function findInPath(type: string, dirs: string[]): string {
  for (const d of dirs) {
    try {
      accessSync(join(d, type), constants.X_OK)
      return join(d, type)
    } catch {
      // next dir
    }
  }
  throw new Error(`no plugin "${type}" in ${dirs.join(':')}`)
}

/** One plugin run: `command` with the call's CNI_* variables and `conf` on stdin. */
export async function execPlugin(file: string, command: string, call: Call, conf: unknown, path: string[]): Promise<PluginRun> {
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: call.containerId ?? '',
    CNI_NETNS: call.netns ?? '',
    CNI_IFNAME: call.ifname ?? '',
    CNI_ARGS: call.args ?? '',
    CNI_PATH: path.join(':'),
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
  }
  // A runtime passes its own environment; keep only what a daemon would have (no test-runner variables).
  const res = await execa(file, [], { env, extendEnv: false, input: typeof conf === 'string' ? conf : JSON.stringify(conf), reject: false, timeout: 90_000 })
  const out: PluginRun = { exitCode: res.exitCode ?? -1, stdout: String(res.stdout ?? ''), stderr: String(res.stderr ?? '') }
  try {
    if (out.stdout.trim()) out.json = JSON.parse(out.stdout)
  } catch {
    // not JSON: the test sees stdout as text
  }
  return out
}

export interface Conflist {
  cniVersion: string
  name: string
  plugins: Array<Record<string, unknown> & { type: string }>
}

export interface Capabilities {
  portMappings?: unknown[]
  mac?: string
  ips?: string[]
}

/** A network (conflist) as a runtime runs it. */
export class CniRuntime {
  private readonly cache = new Map<string, unknown>()
  private readonly versions = new Map<string, string[]>()

  constructor(
    readonly conflist: Conflist,
    readonly binDirs: string[],
  ) {}

  private async supported(type: string): Promise<string[]> {
    let v = this.versions.get(type)
    if (!v) {
      const r = await execPlugin(findInPath(type, this.binDirs), 'VERSION', {}, { cniVersion: this.conflist.cniVersion }, this.binDirs)
      if (r.exitCode !== 0) throw new CniCallError(type, 'VERSION', r)
      v = r.json.supportedVersions as string[]
      this.versions.set(type, v)
    }
    return v
  }

  /** One plugin's config as libcni builds it: name and version from the list, declared capabilities only. */
  private pluginConf(p: Conflist['plugins'][number], extra: Record<string, unknown>, caps: Capabilities = {}): Record<string, unknown> {
    const declared = (p.capabilities ?? {}) as Record<string, boolean>
    const runtimeConfig = Object.fromEntries(Object.entries(caps).filter(([k, v]) => declared[k] && v !== undefined))
    return { ...p, cniVersion: this.conflist.cniVersion, name: this.conflist.name, ...(Object.keys(runtimeConfig).length ? { runtimeConfig } : {}), ...extra }
  }

  private async run(p: Conflist['plugins'][number], command: string, call: Call, conf: Record<string, unknown>): Promise<PluginRun> {
    const versions = await this.supported(p.type)
    if (!versions.includes(this.conflist.cniVersion)) throw new Error(`plugin ${p.type} does not support config version ${this.conflist.cniVersion} (it speaks ${versions.join(', ')})`)
    const r = await execPlugin(findInPath(p.type, this.binDirs), command, call, conf, this.binDirs)
    if (r.exitCode !== 0) throw new CniCallError(p.type, command, r)
    return r
  }

  private key = (call: Call): string => `${call.containerId}/${call.ifname}`

  async add(call: Call, caps: Capabilities = {}): Promise<any> {
    let prev: unknown
    for (const p of this.conflist.plugins) {
      const r = await this.run(p, 'ADD', call, this.pluginConf(p, prev === undefined ? {} : { prevResult: prev }, caps))
      prev = r.json
    }
    this.cache.set(this.key(call), prev)
    return prev
  }

  async check(call: Call): Promise<void> {
    const prev = this.cache.get(this.key(call))
    for (const p of this.conflist.plugins) await this.run(p, 'CHECK', call, this.pluginConf(p, { prevResult: prev }))
  }

  async del(call: Call, caps: Capabilities = {}): Promise<void> {
    const prev = this.cache.get(this.key(call))
    for (const p of [...this.conflist.plugins].reverse()) await this.run(p, 'DEL', call, this.pluginConf(p, prev === undefined ? {} : { prevResult: prev }, caps))
    this.cache.delete(this.key(call))
  }

  /** GC (1.1.0): libcni sends the list under both keys (the spec's, and its first drafts'). */
  async gc(valid: Array<{ containerID: string; ifname: string }>, opts: { key?: 'both' | 'valid' | 'old' } = {}): Promise<void> {
    const key = opts.key ?? 'both'
    const list = { ...(key !== 'old' ? { 'cni.dev/valid-attachments': valid } : {}), ...(key !== 'valid' ? { 'cni.dev/attachments': valid } : {}) }
    for (const p of this.conflist.plugins) await this.run(p, 'GC', {}, this.pluginConf(p, list))
  }

  async status(): Promise<void> {
    for (const p of this.conflist.plugins) await this.run(p, 'STATUS', {}, this.pluginConf(p, {}))
  }
}

// Delegating to the IPAM plugin the config names, as the spec says: the first executable of that
// name in CNI_PATH, run with our environment (CNI_COMMAND set to the verb) and the network
// config on stdin, speaking the highest spec version it supports (asked with VERSION): Debian's
// host-local and static stop at 1.0.0, so an ADD at 1.1.0 asks them at 1.0.0 and converts.

import { accessSync, constants, mkdirSync, readFileSync, statSync } from 'node:fs'
import { writeFileAtomic } from '../write-file.js'
import { join } from 'node:path'
import { RUN_DIR } from '../paths.js'
import { run } from '../proc.js'
import { compareVersions } from './config.js'
import type { CniCommand } from './config.js'
import { CNI_CODES, CniError, PLUMB_CODE_BASE } from './errors.js'
import { formatResult, parseResult } from './result.js'
import type { CniResult } from './result.js'

/** The newest spec version plumb can read a result of (and so may ask a delegate to speak). */
const NEWEST = '1.1.0'
// A DHCP IPAM waits for a server; runtimes have their own, longer, limits.
const TIMEOUT_MS = 60_000
const VERSIONS_FILE = join(RUN_DIR, 'cni-versions.json')

export interface Delegate {
  type: string
  file: string
  /** the spec version this delegate is spoken to in */
  version: string
}

/** The first `dir/type` in CNI_PATH that is an executable file, as libcni's FindInPath. */
export function findPlugin(type: string, path: string[]): string {
  for (const dir of path) {
    const file = join(dir, type)
    try {
      if (!statSync(file).isFile()) continue
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // not there (or not executable): the next dir
    }
  }
  throw new CniError(PLUMB_CODE_BASE + 3, `failed to find IPAM plugin "${type}" in CNI_PATH ${path.join(':') || '(empty)'}`, `install it (e.g. Debian's containernetworking-plugins puts host-local in /usr/lib/cni) or add its directory to the runtime's plugin path`)
}

/**
 * A delegate's supported versions, asked once per binary: the answer is kept under /run/plumb
 * keyed by the file's identity (inode, size, mtime), so an upgraded plugin is asked again and a
 * one-shot ADD does not pay a second spawn (~5 ms) every time.
 */
async function supportedVersions(file: string): Promise<string[]> {
  const st = statSync(file)
  const key = `${file}:${st.ino}:${st.size}:${st.mtimeMs}`
  let known: Record<string, string[]> = {}
  try {
    known = JSON.parse(readFileSync(VERSIONS_FILE, 'utf8')) as Record<string, string[]>
  } catch {
    // none yet (or a torn write of another plumb): ask
  }
  const cached = known[key]
  if (Array.isArray(cached)) return cached
  const res = await run(file, [], { input: JSON.stringify({ cniVersion: NEWEST }), env: { CNI_COMMAND: 'VERSION' }, timeout: TIMEOUT_MS })
  let versions: string[] = []
  try {
    const v = JSON.parse(res.stdout) as { supportedVersions?: unknown }
    if (res.exitCode === 0 && Array.isArray(v.supportedVersions)) versions = v.supportedVersions.filter((x): x is string => typeof x === 'string')
  } catch {
    // a plugin that predates VERSION (spec 0.1.0): it speaks 0.1.0
  }
  if (versions.length === 0) versions = ['0.1.0']
  try {
    mkdirSync(RUN_DIR, { recursive: true })
    writeFileAtomic(VERSIONS_FILE, JSON.stringify({ ...known, [key]: versions }))
  } catch {
    // a cache that cannot be written only costs the next ADD its VERSION call
  }
  return versions
}

/** The highest version the delegate supports that plumb can read. */
export function pickVersion(supported: string[]): string | undefined {
  return supported.filter((v) => /^\d+\.\d+\.\d+$/.test(v) && compareVersions(v, NEWEST) <= 0).sort(compareVersions).pop()
}

/** Find the IPAM plugin and the version to speak to it. */
export async function delegateFor(type: string, path: string[]): Promise<Delegate> {
  const file = findPlugin(type, path)
  const version = pickVersion(await supportedVersions(file))
  if (!version) throw new CniError(CNI_CODES.INCOMPATIBLE_VERSION, `IPAM plugin "${type}" (${file}) speaks no CNI version plumb reads`, `plumb reads results of 0.1.0 to ${NEWEST}`)
  return { type, file, version }
}

/** Whether the delegate knows a verb (CHECK is 0.4.0, GC and STATUS are 1.1.0). */
export function delegateKnows(d: Delegate, command: CniCommand): boolean {
  if (command === 'CHECK') return compareVersions(d.version, '0.4.0') >= 0
  if (command === 'GC' || command === 'STATUS') return compareVersions(d.version, '1.1.0') >= 0
  return true
}

/** The config as the delegate reads it: our config in its version (prevResult converted too). */
function configFor(d: Delegate, raw: Record<string, unknown>): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...raw, cniVersion: d.version }
  if (raw.prevResult !== undefined && compareVersions(d.version, '0.3.0') >= 0) {
    conf.prevResult = formatResult(parseResult(raw.prevResult, 'prevResult'), d.version as never)
  } else {
    delete conf.prevResult
  }
  return conf
}

/**
 * Run the delegate for `command`. `env` overrides our own CNI_* variables (GC releases an
 * attachment by naming its container and interface). ADD resolves to its result; a delegate's
 * error object comes back as a CniError with its own code, message and details.
 */
export async function invoke(d: Delegate, command: CniCommand, raw: Record<string, unknown>, env: Record<string, string> = {}): Promise<CniResult | undefined> {
  const res = await run(d.file, [], { input: JSON.stringify(configFor(d, raw)), env: { ...env, CNI_COMMAND: command }, timeout: TIMEOUT_MS })
  if (res.exitCode !== 0) {
    let e: { code?: unknown; msg?: unknown; details?: unknown } = {}
    try {
      e = JSON.parse(res.stdout) as typeof e
    } catch {
      // not an error object: say what it printed
    }
    if (typeof e.code === 'number' && typeof e.msg === 'string') {
      throw new CniError(e.code, `${d.type} ${command}: ${e.msg}`, typeof e.details === 'string' ? e.details : '')
    }
    const why = res.timedOut ? `timed out after ${TIMEOUT_MS / 1000} s` : `exit ${res.exitCode}${res.signal ? ` (${res.signal})` : ''}`
    throw new CniError(PLUMB_CODE_BASE + 1, `IPAM plugin ${d.type} ${command} failed: ${why}`, (res.stderr || res.stdout).trim().slice(0, 500))
  }
  if (command !== 'ADD') return undefined
  let out: unknown
  try {
    out = JSON.parse(res.stdout)
  } catch {
    throw new CniError(CNI_CODES.DECODING_FAILURE, `IPAM plugin ${d.type} ADD printed no JSON result`, res.stdout.slice(0, 200))
  }
  return parseResult(out, `the ${d.type} IPAM result`)
}

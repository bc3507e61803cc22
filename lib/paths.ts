// Where plumb's own files are: the package root, found by walking up from this module, so it
// works from dist/lib/**.js (library) and from the CLI's bundles (dist/plumb-cli.cjs, its snapshot) alike.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where plumb keeps its host-wide runtime state and locks (tmpfs: gone with a reboot, as they should be). */
export const RUN_DIR = '/run/plumb'

/** Where plumb keeps what must survive a reboot: the records of what it did to each container (lib/watch/records.ts). */
export const STATE_DIR = '/var/lib/plumb'

/** Where `plumb cni install` puts the plugin unless told: where containerd, CRI-O and Multus look first. */
export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin'

/**
 * A guest key (a container id or `ino:<netns inode>`) as a file name under RUN_DIR: every byte
 * outside a small safe set (including "-") escaped, so the first "-" of a DHCP lease dir's name
 * stays the separator and two guests or two interfaces never map to the same file.
 */
export function encodeKey(key: string): string {
  return [...Buffer.from(key, 'utf8')].map((b) => (/[A-Za-z0-9._:]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('')
}

/** The directory holding plumb's package.json, walking up from `from` (a file: URL or path). */
export function findPackageRoot(from: string = import.meta.url): string | undefined {
  let dir = dirname(from.startsWith('file:') ? fileURLToPath(from) : from)
  for (;;) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'plumb') return dir
      } catch {
        // an unreadable package.json on the way up is not ours: keep walking
      }
    }
    const up = dirname(dir)
    if (up === dir) return undefined
    dir = up
  }
}

// Keyed by where this code runs from: the CLI's start-up snapshot (bin/snapshot.ts) is made in
// one place and learns where it runs only when it starts.
let root: { from: string; dir: string | undefined } | undefined

export function packageRoot(): string {
  if (root?.from !== import.meta.url) root = { from: import.meta.url, dir: findPackageRoot() }
  if (root.dir === undefined) throw new Error('cannot find the plumb package root')
  return root.dir
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
}

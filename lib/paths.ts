// Where plumb's own files are: the package root, found by walking up from this module, so it
// works from dist/lib/**.js (library) and from the one-file bundle dist/plumb-cli.cjs (CLI) alike.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where plumb keeps its host-wide runtime state and locks (tmpfs: gone with a reboot, as they should be). */
export const RUN_DIR = '/run/plumb'

/**
 * A guest key (a container id or `ino:<netns inode>`) as a file name under RUN_DIR: every byte
 * outside a small safe set (including "-") escaped, so the first "-" of a DHCP lease dir's name
 * stays the separator and two guests or two interfaces never map to the same file.
 */
export function encodeKey(key: string): string {
  return [...Buffer.from(key, 'utf8')].map((b) => (/[A-Za-z0-9._:]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('')
}

let root: string | undefined

export function packageRoot(): string {
  if (root) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pj = join(dir, 'package.json')
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'plumb') return (root = dir)
      } catch {
        /* not ours: keep walking */
      }
    }
    const up = dirname(dir)
    if (up === dir) throw new Error('cannot find the plumb package root')
    dir = up
  }
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
}

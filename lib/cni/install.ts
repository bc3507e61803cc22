// `plumb cni install`: put a launcher named `plumb` where runtimes look for CNI plugins (a small
// sh script that finds node and runs this package's dist/plumb with it), and print a sample conflist.
// Idempotent; `--del` removes a launcher plumb wrote and nothing else.

import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { removeDeadTemps, writeFileAtomic } from '../write-file.js'
import { join } from 'node:path'
import { conflict, usageError } from '../errors.js'
import { emptyResult } from '../ops/result.js'
import type { OpResult } from '../ops/result.js'
import { DEFAULT_CNI_BIN_DIR, packageRoot } from '../paths.js'

const MARKER = '# plumb-cni-launcher v1'

export interface CniInstallOptions {
  /** default /opt/cni/bin */
  dir?: string
  /** remove the launcher instead (only one plumb wrote) */
  del?: boolean
  dryRun?: boolean
  /** the node binary the launcher tries first (default: the one running now) */
  node?: string
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/**
 * The launcher's text: the node that ran the install first, then node on PATH and the usual
 * places, handed to the package's own `plumb` command (native/launcher.c: the CNI plugin's start-up
 * snapshot when the build vouched for that node, else its code cache).
 */
export function launcherScript(node: string, entry: string): string {
  return [
    '#!/bin/sh',
    MARKER,
    `# plumb as a CNI plugin ("type": "plumb"): runs ${entry} with node. Written by \`plumb cni install\`.`,
    '# Runtimes start plugins with a bare environment, so node is searched for here, not assumed on PATH.',
    `for n in ${q(node)} "$(command -v node 2>/dev/null)" /usr/local/bin/node /usr/bin/node; do`,
    `  if [ -n "$n" ] && [ -x "$n" ]; then PLUMB_NODE=$n; export PLUMB_NODE; exec ${q(entry)} "$@"; fi`,
    'done',
    // The spec's error object on stdout: the runtime shows it as the reason.
    `echo '{"cniVersion":"1.1.0","code":105,"msg":"plumb: no node binary found (tried ${node.replace(/'/g, '')}, PATH, /usr/local/bin, /usr/bin)"}'`,
    'exit 1',
    '',
  ].join('\n')
}

/** A conflist to start from: plumb makes the veth and addresses, the reference portmap publishes ports. */
export function sampleConflist(): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: 'plumb',
    plugins: [
      {
        type: 'plumb',
        op: 'attach-veth',
        bridge: 'plumb0',
        ipam: { type: 'host-local', ranges: [[{ subnet: '198.18.10.0/24', gateway: '198.18.10.1' }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }
}

/** The launcher `cni install` writes now for `node`: this package's dist/plumb. */
const currentLauncher = (node: string): { entry: string; text: string } => {
  const entry = join(packageRoot(), 'dist', 'plumb')
  return { entry, text: launcherScript(node, entry) }
}

/**
 * plumb's launcher in `dir`, if one is there, and whether it is what `cni install` would write now
 * (for this node): one an older plumb wrote (which ran dist/plumb.cjs, so never the CNI plugin's
 * start-up snapshot) or one for another node is not. For doctor.
 */
export function launcherState(dir = DEFAULT_CNI_BIN_DIR, node = process.execPath): { file: string; current: boolean } | undefined {
  const file = join(dir, 'plumb')
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  return text.includes(MARKER) ? { file, current: text === currentLauncher(node).text } : undefined
}

export function cniInstall(opts: CniInstallOptions = {}): OpResult {
  const dir = opts.dir ?? DEFAULT_CNI_BIN_DIR
  if (!dir.startsWith('/')) throw usageError(`--dir "${dir}" is not an absolute path`, `runtimes are configured with absolute plugin dirs, e.g. --dir ${DEFAULT_CNI_BIN_DIR}`)
  const file = join(dir, 'plumb')
  const { entry, text } = currentLauncher(opts.node ?? process.execPath)
  const result = emptyResult(opts.del ? 'cni-uninstall' : 'cni-install', 'host', opts.dryRun ?? false)
  result.file = file
  const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined
  if (current !== undefined && !current.includes(MARKER)) {
    throw conflict(`${file} exists and is not plumb's launcher`, `another plugin is installed as "plumb" there: move it, or install into another dir with --dir`)
  }
  // an install or update killed before its rename left the launcher's temporary file
  if (!opts.dryRun) removeDeadTemps(dir, 'plumb')
  if (opts.del) {
    if (current === undefined) {
      result.messages.push(`nothing to remove: no ${file}`)
      return result
    }
    result.plan.push(`rm ${file}`)
    if (!opts.dryRun) rmSync(file, { force: true })
    result.changed = true
    result.messages.push(`removed ${file}`)
    return result
  }
  const conflist = sampleConflist()
  result.conflist = conflist
  if (current === text) {
    result.messages.push(`already installed: ${file} runs ${entry}`)
  } else {
    result.plan.push(`mkdir -p ${dir}`, `install -m 0755 /dev/stdin ${file} <<'EOF'\n${text}EOF`)
    if (!opts.dryRun) {
      mkdirSync(dir, { recursive: true })
      // A runtime may exec the plugin at any moment: it sees the old file or the new, never half.
      writeFileAtomic(file, text, { mode: 0o755 })
    }
    result.changed = true
    result.messages.push(`${current === undefined ? 'installed' : 'updated'} ${file}: runs ${entry} with node`)
  }
  result.messages.push(`a conflist to start from (e.g. /etc/cni/net.d/10-plumb.conflist):\n${JSON.stringify(conflist, null, 2)}`)
  return result
}

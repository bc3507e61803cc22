// Which OVS datapath a new bridge gets: the kernel's when it has the openvswitch module, else userspace (netdev).

import { existsSync } from 'node:fs'
import { release } from 'node:os'
import { join } from 'node:path'
import { usageError } from '../errors.js'

export type DatapathType = 'netdev' | 'system'

let cached: boolean | undefined

/**
 * The kernel has (or can load) the openvswitch datapath. Cheap on purpose (no modprobe spawn):
 * the module is loaded (/sys/module/openvswitch) or its .ko is installed where modprobe looks.
 * `root` is for tests (a fake / with those paths).
 */
export function kernelHasOvsDatapath(root = '/'): boolean {
  const useCache = root === '/'
  if (useCache && cached !== undefined) return cached
  const rel = release()
  const ko = join(root, 'lib/modules', rel, 'kernel/net/openvswitch/openvswitch.ko')
  const found = existsSync(join(root, 'sys/module/openvswitch')) || ['', '.xz', '.zst', '.gz'].some((ext) => existsSync(ko + ext))
  if (useCache) cached = found
  return found
}

/**
 * `auto` -> `system` with the kernel module, `netdev` without. Without this a bridge made on a
 * module-less host (pipework's bug) exists in ovsdb but never forwards a packet.
 */
export function resolveDatapathType(type: DatapathType | 'auto', root = '/'): DatapathType {
  if (type === 'netdev' || type === 'system') return type
  if (type !== 'auto') throw usageError(`unknown OVS datapath type "${String(type)}"`, "use netdev, system or auto")
  return kernelHasOvsDatapath(root) ? 'system' : 'netdev'
}

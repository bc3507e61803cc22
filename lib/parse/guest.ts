// Guest references: the closed union of ways to name a network namespace (CLI.md "Naming a guest").

import path from 'node:path'
import { usageError } from '../errors.js'

export type GuestRef =
  | { kind: 'container'; engine: 'docker' | 'podman' | 'auto'; name: string }
  | { kind: 'pid'; pid: number }
  | { kind: 'netns'; name: string }
  | { kind: 'path'; path: string }
  | { kind: 'host' }
  | { kind: 'self' }

export interface GuestRefOptions {
  /** accept the word `host` (the host's own netns: p2p-link's second side) */
  allowHostWord?: boolean
  /** accept the word `self` (the caller's own netns: `wait` inside a container) */
  allowSelf?: boolean
}

/** Linux PID_MAX_LIMIT (2^22): no pid is larger on 64-bit kernels. */
const PID_MAX = 4194304

// Docker's own rule for names (daemon/names: restrictedNameChars); IDs are 12..64 hex.
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
const HEX_ID = /^[0-9a-f]{12,64}$/

const FORMS = 'a container NAME or ID, docker:NAME, podman:NAME, pid:1234 (or 1234), netns:NAME, or an absolute path to a netns file'

function formsHint(opts: GuestRefOptions): string {
  return `name a guest as ${FORMS}${opts.allowHostWord ? ', or host' : ''}${opts.allowSelf ? ', or self' : ''}`
}

function hasControl(s: string): boolean {
  return /[\u0000-\u001f\u007f]/.test(s)
}

function parsePid(text: string, spec: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw usageError(`invalid pid "${text}" in guest "${spec}"`, 'a pid is a positive decimal integer, e.g. pid:1234')
  const pid = Number(text)
  if (pid > PID_MAX) throw usageError(`invalid pid ${text} in guest "${spec}": larger than the kernel's limit ${PID_MAX}`, 'check the pid (e.g. docker inspect -f {{.State.Pid}} NAME)')
  return pid
}

function containerName(name: string, spec: string, engine: string): string {
  if (name === '') throw usageError(`empty container name in guest "${spec}"`, `write ${engine}:NAME`)
  if (!CONTAINER_NAME.test(name)) {
    throw usageError(`invalid container name "${name}" in guest "${spec}"`, 'container names match [a-zA-Z0-9][a-zA-Z0-9_.-]*; IDs are 12..64 hex digits')
  }
  return name
}

/** Parse a guest reference; throws a usage error listing the accepted forms. */
export function parseGuestRef(s: string, opts: GuestRefOptions = {}): GuestRef {
  const spec = typeof s === 'string' ? s.trim() : ''
  if (spec === '') throw usageError('empty guest', formsHint(opts))
  if (hasControl(spec)) throw usageError(`invalid guest "${JSON.stringify(spec).slice(1, -1)}": contains a control character`, formsHint(opts))
  if (spec === 'host') {
    if (opts.allowHostWord) return { kind: 'host' }
    throw usageError('"host" is not accepted as a guest here', `only p2p-link's second side may be the host; a container named "host" is docker:host`)
  }
  if (spec === 'self') {
    if (opts.allowSelf) return { kind: 'self' }
    throw usageError('"self" is not accepted as a guest here', `only wait accepts self; a container named "self" is docker:self`)
  }
  if (spec.startsWith('/')) {
    // normalize resolves "." and ".." lexically (no I/O); a trailing slash would name a directory.
    let p = path.posix.normalize(spec)
    if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1)
    if (p === '/') throw usageError(`guest path "${spec}" is the root directory, not a netns file`, 'e.g. /proc/1234/ns/net or /run/netns/NAME')
    return { kind: 'path', path: p }
  }
  const colon = spec.indexOf(':')
  if (colon !== -1) {
    const scheme = spec.slice(0, colon)
    const rest = spec.slice(colon + 1)
    switch (scheme) {
      case 'docker':
      case 'podman':
        return { kind: 'container', engine: scheme, name: containerName(rest, spec, scheme) }
      case 'pid':
        return { kind: 'pid', pid: parsePid(rest, spec) }
      case 'netns':
        if (rest === '' || rest === '.' || rest === '..' || rest.includes('/')) {
          throw usageError(`invalid netns name "${rest}" in guest "${spec}"`, 'an ip netns name is a file name under /run/netns: no "/", not "." or ".."; for a path, give it absolute')
        }
        if (Buffer.byteLength(rest, 'utf8') > 255) throw usageError(`netns name in guest "${spec}" is longer than 255 bytes`, 'use a shorter name')
        return { kind: 'netns', name: rest }
      default:
        throw usageError(`unknown guest kind "${scheme}:" in "${spec}"`, formsHint(opts))
    }
  }
  if (/^\d+$/.test(spec)) {
    // All-digit: a pid. An all-digit 12..64 character container ID is possible (hex digits
    // that happen to be decimal) and longer than any pid, so it stays a container ID.
    if (spec.length >= 12 && HEX_ID.test(spec)) return { kind: 'container', engine: 'auto', name: spec }
    return { kind: 'pid', pid: parsePid(spec, spec) }
  }
  if (spec.includes('/')) throw usageError(`guest path "${spec}" is not absolute`, `paths must be absolute, e.g. ${path.posix.resolve('/', spec)}`)
  if (!CONTAINER_NAME.test(spec)) throw usageError(`invalid guest "${spec}"`, formsHint(opts))
  return { kind: 'container', engine: 'auto', name: spec }
}

/**
 * The canonical text of a guest reference; parseGuestRef(formatGuestRef(r), {all allowed})
 * gives r back. An `auto` container prints as its bare name unless the bare name would mean
 * something else (digits -> pid, host, self): then as docker:NAME, which is what auto tries first.
 */
export function formatGuestRef(ref: GuestRef): string {
  switch (ref.kind) {
    case 'container':
      if (ref.engine !== 'auto') return `${ref.engine}:${ref.name}`
      if (ref.name === 'host' || ref.name === 'self' || (/^\d+$/.test(ref.name) && !(ref.name.length >= 12 && HEX_ID.test(ref.name)))) return `docker:${ref.name}`
      return ref.name
    case 'pid':
      return `pid:${ref.pid}`
    case 'netns':
      return `netns:${ref.name}`
    case 'path':
      return ref.path
    case 'host':
      return 'host'
    case 'self':
      return 'self'
  }
}

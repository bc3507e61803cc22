// Unit tests (no root) for the one errno -> exit code mapping (and the places that ask it), NLMSGERR parsing and addon lookup.

import test from 'ava'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { configure } from '../../lib/config.js'
import { PlumbError } from '../../lib/errors.js'
import type { ErrorCode } from '../../lib/errors.js'
import { inspectContainer, resolveGuest } from '../../lib/guest/index.js'
import { NetlinkError, errnoName, errnoOf, errorCodeOf, isGone, isMissingKind, isNoServer, parseNlmsgerr, toPlumbError } from '../../lib/kernel/errors.js'
import { transact } from '../../lib/ovs/ovsdb.js'
import { run } from '../../lib/proc.js'
import { findPackageRoot } from '../../lib/paths.js'

const cases: Array<[errno: number, code: string, plumb: ErrorCode, exit: number]> = [
  [17, 'EEXIST', 'CONFLICT', 4],
  [19, 'ENODEV', 'NOT_FOUND', 3],
  [2, 'ENOENT', 'NOT_FOUND', 3],
  [3, 'ESRCH', 'NOT_FOUND', 3],
  [1, 'EPERM', 'PERMISSION', 6],
  // rtnetlink's EACCES is not about privileges (see the IPv6 case below)
  [13, 'EACCES', 'FAILED', 1],
  [34, 'ERANGE', 'USAGE', 2],
  [22, 'EINVAL', 'USAGE', 2],
  [99, 'EADDRNOTAVAIL', 'USAGE', 2],
  [101, 'ENETUNREACH', 'USAGE', 2],
  [95, 'EOPNOTSUPP', 'FAILED', 1],
  [16, 'EBUSY', 'FAILED', 1],
  [110, 'ETIMEDOUT', 'FAILED', 1],
]

for (const [errno, code, plumb, exit] of cases) {
  test(`errno ${errno} (${code}) -> ${plumb} (exit ${exit})`, (t) => {
    const nl = new NetlinkError(errno, 'RTM_NEWLINK')
    t.is(nl.code, code)
    t.is(nl.errno, errno)
    const err = toPlumbError(nl, 'do the thing')
    t.true(err instanceof PlumbError)
    t.is(err.code, plumb)
    t.is(err.exitCode, exit)
    t.true(err.message.startsWith(`failed to do the thing: ${code}: `))
    t.is(err.cause, nl)
  })
}

test('negative errnos (as the kernel sends them) name the same code', (t) => {
  t.is(new NetlinkError(-17, 'RTM_NEWADDR').code, 'EEXIST')
  t.is(errnoName(95), 'EOPNOTSUPP')
  t.is(errnoName(-2), 'ENOENT')
  t.is(errnoName(4000), 'E4000')
})

test('the extack text replaces the generic description', (t) => {
  const nl = new NetlinkError(17, 'RTM_NEWADDR', { extack: 'ipv4: Address already assigned' })
  t.is(nl.message, 'RTM_NEWADDR: EEXIST: ipv4: Address already assigned')
  t.is(toPlumbError(nl, 'add address 198.18.0.2/24 to "eth1"').message, 'failed to add address 198.18.0.2/24 to "eth1": EEXIST: ipv4: Address already assigned')
  t.is(toPlumbError(new NetlinkError(17, 'RTM_NEWLINK'), 'create veth "x"').message, 'failed to create veth "x": EEXIST: File exists')
})

test('EOPNOTSUPP "Unknown device type" on a create -> UNSUPPORTED naming the kind and its module', (t) => {
  const nl = new NetlinkError(95, 'RTM_NEWLINK', { kind: 'vlan', extack: 'Unknown device type', extackEnabled: true })
  const err = toPlumbError(nl, 'create vlan "eth0.5"')
  t.is(err.code, 'UNSUPPORTED')
  t.is(err.exitCode, 5)
  t.is(err.message, 'failed to create vlan "eth0.5": the kernel has no "vlan" link type (8021q): EOPNOTSUPP: Unknown device type')
  t.regex(err.hint!, /modprobe 8021q/)
  t.regex(toPlumbError(new NetlinkError(95, 'RTM_NEWLINK', { kind: 'ipvlan', extack: 'Unknown device type' }), 'x').message, /no "ipvlan" link type: /)
})

test('other EOPNOTSUPPs of a create (master not a bridge) are not a missing kind', (t) => {
  t.is(toPlumbError(new NetlinkError(95, 'RTM_NEWLINK', { kind: 'veth', extackEnabled: true }), 'create veth "x"').code, 'FAILED')
  t.is(toPlumbError(new NetlinkError(95, 'RTM_NEWLINK', { kind: 'veth', extack: 'something else', extackEnabled: true }), 'x').code, 'FAILED')
  // without extended acks there is no telling: the kind is the likely culprit
  t.is(toPlumbError(new NetlinkError(95, 'RTM_NEWLINK', { kind: 'vlan' }), 'x').code, 'UNSUPPORTED')
  t.is(toPlumbError(new NetlinkError(95, 'RTM_SETLINK'), 'x').code, 'FAILED')
})

test('EACCES on an address add is IPv6 off on the interface, not "run it as root"; EACCES from a file still is a permission problem', (t) => {
  const nl = new NetlinkError(13, 'RTM_NEWADDR', { extack: 'ipv6: IPv6 is disabled on this device', extackEnabled: true })
  const err = toPlumbError(nl, 'add address 2001:db8::10/64 on link #2 in docker:web')
  t.is(err.code, 'FAILED')
  t.is(err.exitCode, 1)
  t.is(err.message, 'failed to add address 2001:db8::10/64 on link #2 in docker:web: EACCES: ipv6: IPv6 is disabled on this device')
  t.regex(err.hint!, /disable_ipv6/)
  t.notRegex(err.hint!, /root/)
  const fsErr = Object.assign(new Error("EACCES: permission denied, open '/run/netns/x'"), { code: 'EACCES' })
  t.is(toPlumbError(fsErr, 'open network namespace').code, 'PERMISSION')
})

test('per-call overrides: EADDRNOTAVAIL on a delete means "not there"', (t) => {
  const nl = new NetlinkError(99, 'RTM_DELADDR')
  t.is(toPlumbError(nl, 'delete address').code, 'USAGE')
  t.is(toPlumbError(nl, 'delete address', { overrides: { EADDRNOTAVAIL: 'NOT_FOUND' } }).code, 'NOT_FOUND')
  t.is(toPlumbError(nl, 'x', { hint: 'mine' }).hint, 'mine')
})

test('errno-bearing errors from the addon and fs map the same way', (t) => {
  const addon = Object.assign(new Error('setns: EINVAL: Invalid argument'), { code: 'EINVAL', errno: -22 })
  const e1 = toPlumbError(addon, 'enter netns')
  t.is(e1.code, 'USAGE')
  t.is(e1.message, 'failed to enter netns: EINVAL: Invalid argument')
  const fsErr = Object.assign(new Error("ENOENT: no such file or directory, open '/proc/sys/net/x'"), { code: 'ENOENT' })
  const e2 = toPlumbError(fsErr, 'read sysctl net.x')
  t.is(e2.code, 'NOT_FOUND')
  t.is(e2.message, "failed to read sysctl net.x: ENOENT: no such file or directory, open '/proc/sys/net/x'")
  t.is(toPlumbError(Object.assign(new Error('nope'), { code: 'EPERM' }), 'x').code, 'PERMISSION')
})

test('non-errno errors are FAILED; PlumbErrors pass through untouched', (t) => {
  const e = toPlumbError(new Error('socket exploded'), 'list links')
  t.is(e.code, 'FAILED')
  t.is(e.message, 'failed to list links: socket exploded')
  t.is(toPlumbError('a string', 'x').message, 'failed to x: a string')
  const p = new PlumbError('USAGE', 'bad')
  t.is(toPlumbError(p, 'x'), p)
  // a code that is not an errno name is not treated as one
  t.is(toPlumbError(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' }), 'y').code, 'FAILED')
})

/** An NLMSG_ERROR payload as the kernel builds it: error, original header (+ payload unless
 *  capped), then TLVs when NLM_F_ACK_TLVS. */
function nlmsgerr(errno: number, opts: { capped?: boolean; msg?: string; origPayload?: number } = {}): { data: Buffer; flags: number } {
  const payloadLen = opts.origPayload ?? 8
  const head = Buffer.alloc(4 + 16)
  head.writeInt32LE(-errno, 0)
  head.writeUInt32LE(16 + payloadLen, 4) // nlmsg_len of the original request
  head.writeUInt16LE(20, 8)
  const parts = [head]
  // the kernel reserves the copied request NLMSG_ALIGNed, so the TLVs start 4-aligned
  if (!opts.capped) parts.push(Buffer.concat([Buffer.alloc(payloadLen, 0xaa), Buffer.alloc(((payloadLen + 3) & ~3) - payloadLen)]))
  let flags = opts.capped ? 0x100 : 0
  if (opts.msg !== undefined) {
    flags |= 0x200
    const text = Buffer.from(opts.msg + '\0')
    const len = 4 + text.length
    const tlv = Buffer.alloc((len + 3) & ~3)
    tlv.writeUInt16LE(len, 0)
    tlv.writeUInt16LE(1, 2) // NLMSGERR_ATTR_MSG
    text.copy(tlv, 4)
    // an NLMSGERR_ATTR_OFFS before it, as the kernel often sends
    const offs = Buffer.alloc(8)
    offs.writeUInt16LE(8, 0)
    offs.writeUInt16LE(2, 2)
    offs.writeUInt32LE(24, 4)
    parts.push(offs, tlv)
  }
  return { data: Buffer.concat(parts), flags }
}

test('parseNlmsgerr: ACK, errno, extack with and without the capped original message', (t) => {
  const ack = nlmsgerr(0)
  t.deepEqual(parseNlmsgerr(ack.data, ack.flags), { errno: 0 })
  const plain = nlmsgerr(17)
  t.deepEqual(parseNlmsgerr(plain.data, plain.flags), { errno: 17 })
  const full = nlmsgerr(17, { msg: 'ipv4: Address already assigned', origPayload: 13 })
  t.deepEqual(parseNlmsgerr(full.data, full.flags), { errno: 17, extack: 'ipv4: Address already assigned' })
  const capped = nlmsgerr(95, { capped: true, msg: 'Unknown device type' })
  t.deepEqual(parseNlmsgerr(capped.data, capped.flags), { errno: 95, extack: 'Unknown device type' })
  t.deepEqual(parseNlmsgerr(Buffer.alloc(2), 0), { errno: 0 }, 'short payloads do not throw')
})

test('findPackageRoot walks up to the package.json named "plumb" (dist/lib/kernel and the bundle)', (t) => {
  const here = dirname(fileURLToPath(import.meta.url)) // dist/test/unit
  const root = join(here, '..', '..', '..')
  t.is(findPackageRoot(join(root, 'dist', 'lib', 'kernel', 'native.js')), root)
  t.is(findPackageRoot(`file://${join(root, 'dist', 'plumb-cli.cjs')}`), root)
  t.is(findPackageRoot('/'), undefined)
})

// --- the table every errno goes through, and the places that ask it ---

const table: Array<[errno: string, plumb: ErrorCode, noServer: boolean, gone: boolean]> = [
  ['EEXIST', 'CONFLICT', false, false],
  ['ENODEV', 'NOT_FOUND', false, true],
  ['ENOENT', 'NOT_FOUND', true, true],
  ['ESRCH', 'NOT_FOUND', false, true],
  ['ENXIO', 'NOT_FOUND', false, true],
  ['ENOTDIR', 'NOT_FOUND', true, true],
  ['EPERM', 'PERMISSION', false, false],
  ['EACCES', 'PERMISSION', false, false],
  ['EINVAL', 'USAGE', false, false],
  ['ERANGE', 'USAGE', false, false],
  ['EADDRNOTAVAIL', 'USAGE', false, true],
  ['ENETUNREACH', 'USAGE', false, false],
  ['ECONNREFUSED', 'FAILED', true, false],
  ['ENOTSOCK', 'FAILED', true, false],
  ['EBUSY', 'FAILED', false, false],
  ['EOPNOTSUPP', 'FAILED', false, false],
]

for (const [errno, plumb, noServer, gone] of table) {
  test(`table: ${errno} is ${plumb}${noServer ? ', nobody serving a socket' : ''}${gone ? ', gone for an undo' : ''}`, (t) => {
    t.is(errorCodeOf(errno), plumb)
    t.is(isNoServer(errno), noServer)
    t.is(isGone(Object.assign(new Error(errno), { code: errno })), gone)
    // toPlumbError says the same as the table (EOPNOTSUPP without a kind is no missing kind)
    t.is(toPlumbError(Object.assign(new Error('x'), { code: errno }), 'x').code, plumb)
  })
}

test('isGone: a NOT_FOUND PlumbError is gone, other PlumbErrors and errors without errno are not', (t) => {
  t.true(isGone(new PlumbError('NOT_FOUND', 'no link')))
  t.false(isGone(new PlumbError('USAGE', 'bad')))
  t.false(isGone(new Error('socket exploded')))
  t.true(isGone(new NetlinkError(19, 'RTM_DELLINK')))
  t.is(errnoOf(new NetlinkError(19, 'RTM_DELLINK')), 'ENODEV')
  t.is(errnoOf(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' })), undefined)
})

test('isMissingKind: "Unknown device type", or EOPNOTSUPP from a socket without extended acks', (t) => {
  t.true(isMissingKind(new NetlinkError(95, 'RTM_NEWLINK', { kind: 'vlan', extack: 'Unknown device type', extackEnabled: true })))
  t.false(isMissingKind(new NetlinkError(95, 'RTM_NEWLINK', { kind: 'veth', extackEnabled: true })))
  t.true(isMissingKind(new NetlinkError(95, 'RTM_NEWLINK', { kind: 'vlan' })))
  t.false(isMissingKind(new NetlinkError(22, 'RTM_NEWLINK', { kind: 'vlan' })))
})

test('a socket path that is a plain file (ECONNREFUSED): the engine is unreachable and OVS "not running", as for a missing one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-errno-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'not-a-socket')
  writeFileSync(file, '')
  const engine = await t.throwsAsync(inspectContainer('web', 'docker', { DOCKER_HOST: `unix://${file}` }), { instanceOf: PlumbError })
  t.is(engine?.code, 'NOT_FOUND')
  t.regex(engine?.message ?? '', /the Docker API is not reachable \(ECONNREFUSED\)/)
  const before = configure({ ovsdbSocket: file })
  t.teardown(() => void configure(before))
  const o = await t.throwsAsync(transact([], { verb: 'read', object: 'OVS port', name: 'vp0' }), { instanceOf: PlumbError })
  t.is(o?.code, 'UNSUPPORTED')
  t.regex(o?.message ?? '', /Open vSwitch is not running \(unix:.*: database connection failed \(Connection refused\)\)$/)
})

test('opening a netns path through a file (ENOTDIR) is not found; a program that is not executable (EACCES) cannot run', async (t) => {
  const e = await t.throwsAsync(resolveGuest({ kind: 'path', path: '/etc/passwd/net' }), { instanceOf: PlumbError })
  t.is(e?.code, 'NOT_FOUND')
  const dir = mkdtempSync(join(tmpdir(), 'pt-errno-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'prog'), '#!/bin/sh\n', { mode: 0o644 })
  const noexec = await t.throwsAsync(run(join(dir, 'prog'), []), { instanceOf: PlumbError })
  t.is(noexec?.code, 'UNSUPPORTED')
  t.regex(noexec?.message ?? '', /cannot run .*prog: not executable$/)
  const missing = await t.throwsAsync(run(join(dir, 'nope'), []), { instanceOf: PlumbError })
  t.regex(missing?.message ?? '', /cannot run .*nope: not found$/)
})

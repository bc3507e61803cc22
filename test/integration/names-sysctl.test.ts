// sysctl and names on `ip netns` and pid guests, through the real CLI: values read back from the
// guest's /proc/sys and files (as `ip netns exec` shows them), traffic and name resolution inside
// the guest, and the host's own /etc files byte-identical throughout.

import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { hasBinary, isRoot, netnsWithInode, ping, sh, shQuiet, spawnIn, testIf, uniq, waitFor, holdGcLock } from '../helpers/index.js'
import type { Teardown } from '../helpers/index.js'
import { fixture, plumb } from './ops-fixture.js'

const asRoot = testIf(isRoot && hasBinary('unshare'), 'names-sysctl: needs root (ip netns) and unshare')

const RECORDS = '/run/plumb/guests'
const HOST_FILES = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf']
const digest = (): string[] => HOST_FILES.map((f) => (existsSync(f) ? createHash('sha256').update(readFileSync(f)).digest('hex') : 'absent'))

/** The host's /etc files must be byte-identical at the end of the test, whatever it did. */
function guardHostFiles(t: Teardown & { deepEqual: (a: unknown, b: unknown, m?: string) => void }): () => void {
  const before = digest()
  return () => t.deepEqual(digest(), before, "the host's /etc/hosts, /etc/hostname and /etc/resolv.conf are unchanged")
}

const sysctlIn = async (ns: string, key: string): Promise<string> => sh('ip', ['netns', 'exec', ns, 'sysctl', '-n', key])
const catIn = async (ns: string, file: string): Promise<string> => (await shQuiet('ip', ['netns', 'exec', ns, 'cat', file])).stdout

asRoot('sysctl sets a per-netns key in the guest only, is idempotent, shows in ls, and --del puts back the value found', async (t) => {
  const f = await fixture(t)
  await sh('ip', ['-n', f.ns, 'link', 'set', 'lo', 'up'])
  const key = 'net.ipv4.icmp_echo_ignore_all'
  const hostBefore = readFileSync('/proc/sys/net/ipv4/icmp_echo_ignore_all', 'utf8').trim()
  t.is(await sysctlIn(f.ns, key), '0')
  t.true(await ping(f.ns, '127.0.0.1'), 'the guest answers its own ping before')

  const dry = await plumb('sysctl', f.guest, `${key}=1`, '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.regex(dry.stdout, new RegExp(`^ip netns exec ${f.ns} sysctl -qw ${key.replace(/\./g, '\\.')}=1$`, 'm'))
  t.is(await sysctlIn(f.ns, key), '0', 'dry-run changed nothing')

  const set = await plumb('sysctl', f.guest, `${key}=1`, '--json')
  t.is(set.exitCode, 0, set.stderr)
  t.true(set.json.changed)
  t.deepEqual(set.json.sysctl[key], { found: '0', set: '1' })
  t.is(await sysctlIn(f.ns, key), '1', 'the kernel has it in the guest')
  t.is(readFileSync('/proc/sys/net/ipv4/icmp_echo_ignore_all', 'utf8').trim(), hostBefore, "the host's value is untouched")
  t.false(await ping(f.ns, '127.0.0.1'), 'and it acts: the guest ignores echo requests now')

  const again = await plumb('sysctl', f.guest, `${key}=1`, '--json')
  t.is(again.exitCode, 0)
  t.false(again.json.changed)
  t.regex(again.json.messages.join('\n'), /already so/)

  const listed = await plumb('ls', f.guest, '--json')
  t.deepEqual(listed.json.guests[0].sysctl, [{ key, value: '1', found: '0' }])
  t.regex((await plumb('ls', f.guest)).stdout, new RegExp(`^ {2}sysctl +${key.replace(/\./g, '\\.')}=1 \\(was 0\\)$`, 'm'))

  const del = await plumb('sysctl', f.guest, key, '--del')
  t.is(del.exitCode, 0, del.stderr)
  t.is(await sysctlIn(f.ns, key), '0')
  t.true(await ping(f.ns, '127.0.0.1'))
  t.is((await plumb('ls', f.guest, '--json')).json.guests[0].sysctl, undefined, 'nothing of plumb\'s is left to show')
  const delAgain = await plumb('sysctl', f.guest, key, '--del')
  t.is(delAgain.exitCode, 0)
  t.regex(delAgain.stdout, /plumb did not set/)
})

asRoot('eight sysctl runs on one guest at once: each value found is kept (the guest lock), so --del puts every one back', async (t) => {
  const f = await fixture(t)
  // Eight per-netns keys with their fresh-netns value and another one; none aliases another.
  const keys: Array<[string, string]> = [
    ['net.ipv4.icmp_echo_ignore_all', '1'],
    ['net.ipv4.icmp_echo_ignore_broadcasts', '0'],
    ['net.ipv4.tcp_ecn', '1'],
    ['net.ipv4.tcp_syncookies', '0'],
    ['net.ipv4.conf.lo.arp_ignore', '1'],
    ['net.ipv4.conf.lo.arp_announce', '2'],
    ['net.ipv4.conf.default.rp_filter', '2'],
    ['net.ipv4.conf.lo.accept_local', '1'],
  ]
  const found = await Promise.all(keys.map(([k]) => sysctlIn(f.ns, k)))
  keys.forEach(([k, v], i) => t.not(found[i], v, `${k} starts other than ${v}`))
  const runs = await Promise.all(keys.map(([k, v]) => plumb('sysctl', f.guest, `${k}=${v}`)))
  runs.forEach((r, i) => t.is(r.exitCode, 0, `${keys[i]![0]}: ${r.stderr}`))
  t.deepEqual(await Promise.all(keys.map(([k]) => sysctlIn(f.ns, k))), keys.map(([, v]) => v), 'the kernel has every value')
  const listed = await plumb('ls', f.guest, '--json')
  t.deepEqual(
    [...listed.json.guests[0].sysctl].sort((a: { key: string }, b: { key: string }) => a.key.localeCompare(b.key)),
    keys.map(([key, value], i) => ({ key, value, found: found[i] })).sort((a, b) => a.key.localeCompare(b.key)),
    'the record kept every value found, none lost to another run writing at the same time',
  )
  const del = await plumb('sysctl', f.guest, '--del')
  t.is(del.exitCode, 0, del.stderr)
  t.deepEqual(await Promise.all(keys.map(([k]) => sysctlIn(f.ns, k))), found, 'every value put back')
})

asRoot('detach --all puts back every sysctl plumb set, an interface\'s while it still exists', async (t) => {
  const f = await fixture(t)
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(2))).exitCode, 0)
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(3), '-i', 'eth2')).exitCode, 0)
  t.is((await plumb('sysctl', f.guest, 'net.ipv4.conf.eth2.rp_filter=2')).exitCode, 0)
  t.is((await plumb('detach', f.guest, 'eth2')).exitCode, 0)
  t.is((await plumb('ls', f.guest, '--json')).json.guests[0].sysctl, undefined, "detaching an interface forgets its sysctls")
  const r = await plumb('sysctl', f.guest, 'net.ipv4.conf.eth1.rp_filter=2', 'net.ipv4.ip_local_port_range=20000 30000', 'net.ipv4.icmp_echo_ignore_all=1')
  t.is(r.exitCode, 0, r.stderr)
  t.is(await sysctlIn(f.ns, 'net.ipv4.conf.eth1.rp_filter'), '2')
  t.is(await sysctlIn(f.ns, 'net.ipv4.ip_local_port_range'), '20000\t30000')
  const d = await plumb('detach', f.guest, '--all')
  t.is(d.exitCode, 0, d.stderr)
  t.is(await sysctlIn(f.ns, 'net.ipv4.icmp_echo_ignore_all'), '0')
  t.not(await sysctlIn(f.ns, 'net.ipv4.ip_local_port_range'), '20000\t30000')
  t.false((await shQuiet('ip', ['-n', f.ns, 'link', 'show', 'eth1'])).exitCode === 0, 'the link went too')
  const again = await plumb('detach', f.guest, '--all')
  t.is(again.exitCode, 0)
  t.regex(again.stdout, /nothing to detach/)
})

asRoot('sysctl refuses host-wide keys (exit 2), a missing interface (exit 3), and rolls back a half-done set (exit 1)', async (t) => {
  const f = await fixture(t)
  for (const bad of ['kernel.hostname=x', 'vm.swappiness=1', 'net.core.rmem_max=1', 'net.ipv4.tcp_mem=1 2 3', 'net.ipv4.ip_forward']) {
    const r = await plumb('sysctl', f.guest, bad)
    t.is(r.exitCode, 2, `${bad}: ${r.stderr}`)
    t.regex(r.stderr, /^hint: /m)
  }
  const missing = await plumb('sysctl', f.guest, 'net.ipv4.conf.pt-none.forwarding=1')
  t.is(missing.exitCode, 3, missing.stderr)
  t.regex(missing.stderr, /no interface "pt-none"/)
  const half = await plumb('sysctl', f.guest, 'net.ipv4.icmp_echo_ignore_all=1', 'net.ipv4.conf.all.rp_filter=notanumber')
  t.not(half.exitCode, 0)
  t.regex(half.stderr, /rolled back: .*icmp_echo_ignore_all=0/)
  t.is(await sysctlIn(f.ns, 'net.ipv4.icmp_echo_ignore_all'), '0', 'the first key is back')
  t.is((await plumb('ls', f.guest, '--json')).json.guests[0].sysctl, undefined, 'and no record of it is left')
})

asRoot('six names runs on one ip netns at once: every entry lands in its files, and --del leaves nothing behind', async (t) => {
  const f = await fixture(t)
  const hostSame = guardHostFiles(t)
  const dir = `/etc/netns/${f.ns}`
  t.teardown(async () => {
    await shQuiet('rm', ['-rf', dir])
  })
  const hosts = [1, 2, 3, 4, 5, 6].map((n) => [`pt-h${n}`, `198.18.${f.octet}.${10 + n}`] as const)
  const runs = await Promise.all(hosts.map(([name, addr]) => plumb('names', f.guest, '--add-host', `${name}:${addr}`)))
  runs.forEach((r, i) => t.is(r.exitCode, 0, `${hosts[i]![0]}: ${r.stderr}`))
  for (const [name, addr] of hosts) t.is((await sh('ip', ['netns', 'exec', f.ns, 'getent', 'hosts', name])).split(/\s+/)[0], addr, `${name} resolves in the guest`)
  const del = await plumb('names', f.guest, '--del')
  t.is(del.exitCode, 0, del.stderr)
  t.false(existsSync(dir), 'the files plumb created, and their directory, are gone')
  hostSame()
})

asRoot('names on an ip netns: /etc/netns/NAME files the guest resolves with, marked, undone to nothing', async (t) => {
  const f = await fixture(t)
  const hostSame = guardHostFiles(t)
  const dir = `/etc/netns/${f.ns}`
  t.teardown(async () => {
    await shQuiet('rm', ['-rf', dir])
  })
  const db = `198.18.${f.octet}.5`
  const args = ['names', f.guest, '--add-host', `pt-db:${db}`, '--dns', `198.18.${f.octet}.53`, '--dns-search', 'lab.example', '--dns-option', 'ndots:2']

  const dry = await plumb(...args, '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.regex(dry.stdout, new RegExp(`^cat > ${dir}/hosts <<'EOF'$`, 'm'))
  t.false(existsSync(dir), 'dry-run created nothing')

  const r = await plumb(...args, '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.deepEqual(r.json.names.hosts, [{ address: db, name: 'pt-db' }])
  const hosts = await catIn(f.ns, '/etc/hosts')
  t.regex(hosts, new RegExp(`^${db.replace(/\./g, '\\.')}\\tpt-db\\t# plumb$`, 'm'))
  t.regex(hosts, /localhost/, "the guest keeps the host's entries it saw before")
  const resolv = await catIn(f.ns, '/etc/resolv.conf')
  t.regex(resolv, new RegExp(`^nameserver 198\\.18\\.${f.octet}\\.53$`, 'm'))
  t.regex(resolv, /^search lab\.example$/m)
  t.regex(resolv, /^options ndots:2$/m)
  // the guest's resolver really uses it
  t.is((await sh('ip', ['netns', 'exec', f.ns, 'getent', 'hosts', 'pt-db'])).split(/\s+/)[0], db)
  t.not((await shQuiet('getent', ['hosts', 'pt-db'])).exitCode, 0, 'the host does not resolve it')

  // exec shows the host's file; exec --mount the guest's
  t.notRegex((await plumb('exec', f.guest, '--', 'cat', '/etc/hosts')).stdout, /pt-db/)
  t.regex((await plumb('exec', '--mount', f.guest, '--', 'cat', '/etc/hosts')).stdout, /pt-db/)

  const again = await plumb(...args, '--json')
  t.is(again.exitCode, 0)
  t.false(again.json.changed, 'a rerun changes nothing')
  const other = await plumb('names', f.guest, '--add-host', `pt-db:198.18.${f.octet}.6`)
  t.is(other.exitCode, 4, other.stderr)
  t.regex(other.stderr, /already has plumb's pt-db/)
  const hn = await plumb('names', f.guest, '--hostname', 'web')
  t.is(hn.exitCode, 2, hn.stderr)
  t.regex(hn.stderr, /shares the host's UTS namespace/)

  const listed = await plumb('ls', f.guest, '--json')
  t.deepEqual(listed.json.guests[0].names.resolv, { nameservers: [`198.18.${f.octet}.53`], search: ['lab.example'], options: ['ndots:2'] })

  const one = await plumb('names', f.guest, '--add-host', `pt-db:${db}`, '--del')
  t.is(one.exitCode, 0, one.stderr)
  t.notRegex(await catIn(f.ns, '/etc/hosts'), /pt-db/)
  t.regex(await catIn(f.ns, '/etc/resolv.conf'), /lab\.example/, 'the other edits stay')

  const all = await plumb('names', f.guest, '--del')
  t.is(all.exitCode, 0, all.stderr)
  t.false(existsSync(dir), 'the files and the directory plumb created are gone')
  t.is((await plumb('ls', f.guest, '--json')).json.guests[0].names, undefined, 'nothing of plumb\'s is left to show')
  hostSame()
})

asRoot('names refuses a guest that shares the host\'s files: host mount namespace, or a private mount namespace over the same /etc (exit 4)', async (t) => {
  const hostSame = guardHostFiles(t)
  // own netns, the host's mount namespace
  const shared = spawnIn(t, undefined, 'unshare', ['--net', '--', 'sleep', '60'])
  // own netns and mount namespace, but the same filesystem: its /etc/hosts IS the host's file
  const copied = spawnIn(t, undefined, 'unshare', ['--net', '--mount', '--propagation', 'private', '--', 'sleep', '60'])
  for (const p of [shared, copied]) {
    await waitFor(() => readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').startsWith('sleep'), { what: 'unshare to exec sleep' })
    const r = await plumb('names', `pid:${p.pid}`, '--add-host', 'pt-x:198.18.0.9', '--dns', '198.18.0.53')
    t.is(r.exitCode, 4, r.stderr)
    t.regex(r.stderr, /host's/)
    // sysctl works there: it is the guest's own netns
    const s = await plumb('sysctl', `pid:${p.pid}`, 'net.ipv4.icmp_echo_ignore_all=1')
    t.is(s.exitCode, 0, s.stderr)
    t.is((await execa('nsenter', [`--net=/proc/${p.pid}/ns/net`, 'sysctl', '-n', 'net.ipv4.icmp_echo_ignore_all'])).stdout.trim(), '1')
    t.is((await plumb('sysctl', `pid:${p.pid}`, '--del')).exitCode, 0)
  }
  hostSame()
})

asRoot('gc forgets the record of a gone ip netns and cleans the /etc/netns files plumb left', async (t) => {
  await holdGcLock(t)
  const ns = uniq()
  await sh('ip', ['netns', 'add', ns])
  t.teardown(async () => {
    await shQuiet('ip', ['netns', 'del', ns])
    await shQuiet('rm', ['-rf', `/etc/netns/${ns}`])
  })
  t.is((await plumb('names', `netns:${ns}`, '--add-host', 'pt-db:198.18.0.5')).exitCode, 0)
  t.is((await plumb('sysctl', `netns:${ns}`, 'net.ipv4.icmp_echo_ignore_all=1')).exitCode, 0)
  t.true(existsSync(`/etc/netns/${ns}/hosts`))
  const record = readdirSync(RECORDS).find((n) => n.endsWith('.json') && JSON.parse(readFileSync(join(RECORDS, n), 'utf8')).guest === `netns:${ns}`)
  t.truthy(record, 'the guest has a record')
  const lock = join(RECORDS, record!.replace(/\.json$/, '.lock'))
  t.true(existsSync(lock), 'and the lock its ops took')
  await sh('ip', ['netns', 'del', ns])
  const dry = await plumb('gc', '--dry-run')
  t.regex(dry.stdout, new RegExp(`forget the record of netns:${ns}`))
  t.true(existsSync(`/etc/netns/${ns}/hosts`), 'dry-run removed nothing')
  const gc = await plumb('gc')
  t.is(gc.exitCode, 0, gc.stderr)
  t.regex(gc.stdout, new RegExp(`removed the record of netns:${ns}`))
  t.false(existsSync(`/etc/netns/${ns}`), "the files plumb created are gone with their guest")
  t.false(existsSync(join(RECORDS, record!)), 'the record is gone')
  t.false(existsSync(lock), 'and so is its lock file')
})

asRoot("a gone ip netns's record is not the next netns's, though the kernel gives that one its inode: --del leaves its values, ls shows none", async (t) => {
  // no gc of another test may forget the dead guest's record before the new guest meets it
  await holdGcLock(t)
  const key = 'net.ipv4.icmp_echo_ignore_all'
  const a = uniq()
  await sh('ip', ['netns', 'add', a])
  t.teardown(async () => void (await shQuiet('ip', ['netns', 'del', a])))
  const ino = statSync(`/run/netns/${a}`).ino
  t.is((await plumb('sysctl', `netns:${a}`, `${key}=1`)).exitCode, 0)
  await sh('ip', ['netns', 'del', a])
  // the next netns made is given a's inode
  const b = await netnsWithInode(t, ino)
  if (!b) return t.fail(`no new netns was given inode ${ino} again`)
  // b's own value, set by its user, not by plumb
  await sh('ip', ['netns', 'exec', b, 'sysctl', '-qw', `${key}=1`])
  const ls = await plumb('ls', `netns:${b}`, '--json')
  t.is(ls.exitCode, 0, ls.stderr)
  t.falsy(ls.json.guests[0]?.sysctl, `ls shows no sysctl of plumb's on ${b}`)
  const del = await plumb('sysctl', `netns:${b}`, '--del')
  t.is(del.exitCode, 0, del.stderr)
  t.is(await sysctlIn(b, key), '1', `--del on ${b} did not put back the value ${a} had`)
  // the dead guest's record is still gc's to forget
  const gc = await plumb('gc')
  t.is(gc.exitCode, 0, gc.stderr)
  t.regex(gc.stdout, new RegExp(`removed the record of netns:${a}`))
  t.deepEqual(readdirSync(RECORDS).filter((n) => n.endsWith('.json') && JSON.parse(readFileSync(join(RECORDS, n), 'utf8')).guest === `netns:${a}`), [])
})

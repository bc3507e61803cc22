// names, sysctl, exec --mount and pipework on real `docker run --net=none` containers: the
// files read back from inside the container (docker exec cat), its hostname, name resolution
// with the container's own resolver, and the host's /etc files byte-identical throughout.

import { createHash } from 'node:crypto'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { TEST_IMAGE, hasBinary, hasDocker, isRoot, makeBridge, makeContainer, runCli, sh, shQuiet, testIf, uniq } from '../helpers/index.js'
import type { TestContainer } from '../helpers/index.js'
import { pipeworkMac } from '../../lib/parse/index.js'

const withDocker = testIf(isRoot && hasDocker(), 'names-docker: needs root and dockerd with plumb-test:busybox')

const HOST_FILES = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf']
const digest = (): string[] => HOST_FILES.map((f) => (existsSync(f) ? createHash('sha256').update(readFileSync(f)).digest('hex') : 'absent'))

const inC = async (c: TestContainer, ...cmd: string[]): Promise<string> => sh('docker', ['exec', c.name, ...cmd])
const files = async (c: TestContainer): Promise<string[]> => Promise.all(['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'].map((f) => inC(c, 'cat', f)))

withDocker('names on a container: its own files and hostname, idempotent, shown by ls, exec --mount sees them, --del restores byte for byte', async (t) => {
  const hostBefore = digest()
  const c = await makeContainer(t)
  const original = await files(c)
  const hostname0 = await inC(c, 'hostname')
  const name = uniq('-h')
  const args = ['names', c.name, '--hostname', name, '--add-host', 'pt-db:198.18.7.5', '--add-host', 'pt-v6:2001:db8::5', '--dns', '198.18.7.53', '--dns-search', 'lab.example', '--dns-option', 'ndots:2']

  const dry = await runCli([...args, '--dry-run'])
  t.is(dry.exitCode, 0, dry.stderr)
  t.regex(dry.stdout, new RegExp(`^nsenter --uts=/proc/${c.pid}/ns/uts hostname ${name}$`, 'm'))
  t.regex(dry.stdout, new RegExp(`^nsenter --mount=/proc/${c.pid}/ns/mnt cat > /etc/hosts <<'EOF'$`, 'm'))
  t.deepEqual(await files(c), original, 'dry-run changed nothing')

  const r = await runCli([...args, '--json'])
  t.is(r.exitCode, 0, r.stderr)
  t.true(r.json.changed)
  const [hosts, resolv, hostname] = await files(c)
  t.regex(hosts!, /^198\.18\.7\.5\tpt-db\t# plumb$/m)
  t.regex(hosts!, /^2001:db8::5\tpt-v6\t# plumb$/m)
  t.regex(resolv!, /^nameserver 198\.18\.7\.53$/m)
  t.regex(resolv!, /^search lab\.example$/m)
  t.regex(resolv!, /^options ndots:2$/m)
  t.is(hostname, name)
  t.is(await inC(c, 'hostname'), name, 'the UTS hostname too')
  // busybox's resolver in the container reads the file: ping resolves pt-db (no reply needed)
  const pingDb = await shQuiet('docker', ['exec', c.name, 'ping', '-c', '1', '-W', '1', 'pt-db'])
  t.regex(pingDb.stdout + pingDb.stderr, /PING pt-db \(198\.18\.7\.5\)/)

  const again = await runCli([...args, '--json'])
  t.is(again.exitCode, 0, again.stderr)
  t.false(again.json.changed, 'a rerun changes nothing')
  t.deepEqual(await files(c), [hosts, resolv, hostname])

  const other = await runCli(['names', c.name, '--hostname', `${name}x`])
  t.is(other.exitCode, 4, other.stderr)

  const listed = await runCli(['ls', c.name, '--json'])
  t.is(listed.json.guests[0].names.hostname, name)
  t.is(listed.json.guests[0].names.hosts.length, 2)

  // exec runs the host's cat on the host's file; --mount the container's own
  t.notRegex((await runCli(['exec', c.name, '--', 'cat', '/etc/hosts'])).stdout, /pt-db/)
  const mounted = await runCli(['exec', '--mount', c.name, '--', 'cat', '/etc/hosts'])
  t.is(mounted.exitCode, 0, mounted.stderr)
  t.is(mounted.stdout.trimEnd(), hosts!)
  t.is((await runCli(['exec', '--mount', c.name, '--', 'hostname'])).stdout.trim(), name)

  const del = await runCli(['names', c.name, '--del'])
  t.is(del.exitCode, 0, del.stderr)
  t.deepEqual(await files(c), original, 'every file is back byte for byte')
  t.is(await inC(c, 'hostname'), hostname0)
  t.deepEqual(digest(), hostBefore, "the host's /etc files never changed")
})

withDocker('detach --all undoes names and sysctl on a container; a read-only /etc/hosts is exit 4 with nothing changed', async (t) => {
  const hostBefore = digest()
  const c = await makeContainer(t)
  const original = await files(c)
  t.is((await runCli(['names', c.name, '--add-host', 'pt-db:198.18.7.5', '--dns', '198.18.7.53'])).exitCode, 0)
  t.is((await runCli(['sysctl', c.name, 'net.ipv4.icmp_echo_ignore_all=1'])).exitCode, 0)
  t.is(await inC(c, 'cat', '/proc/sys/net/ipv4/icmp_echo_ignore_all'), '1')
  const d = await runCli(['detach', c.name, '--all'])
  t.is(d.exitCode, 0, d.stderr)
  t.deepEqual(await files(c), original)
  t.is(await inC(c, 'cat', '/proc/sys/net/ipv4/icmp_echo_ignore_all'), '0')

  const ro = `/tmp/${uniq()}`
  writeFileSync(ro, '127.0.0.1\tlocalhost\n')
  t.teardown(() => rmSync(ro, { force: true }))
  const r = await makeContainer(t, { args: ['-v', `${ro}:/etc/hosts:ro`] })
  const before = await files(r)
  const res = await runCli(['names', r.name, '--add-host', 'pt-db:198.18.7.5', '--dns', '198.18.7.53'])
  t.is(res.exitCode, 4, res.stderr)
  t.regex(res.stderr, /\/etc\/hosts is not writable \(EROFS/)
  t.deepEqual(await files(r), before, 'nothing changed, resolv.conf neither')
  t.is(readFileSync(ro, 'utf8'), '127.0.0.1\tlocalhost\n')
  t.is((await runCli(['ls', r.name, '--json'])).json.guests[0].names, undefined, 'and nothing recorded')
  t.deepEqual(digest(), hostBefore)
})

withDocker('pipework BR CONTAINER IP/PREFIX (the README\'s first form) on two containers: they reach each other', async (t) => {
  const id = uniq()
  const br = await makeBridge(t, `${id}b`)
  t.teardown(async () => {
    for (const rule of (await shQuiet('iptables', ['-w', '-S'])).stdout.split('\n').filter((l) => l.includes(`plumb:${br}`))) {
      await shQuiet('iptables', ['-w', ...rule.replace(/^-A /, '-D ').split(' ').map((a) => a.replace(/^"|"$/g, ''))])
    }
  })
  const a = await makeContainer(t)
  const b = await makeContainer(t)
  const ra = await runCli(['pipework', br, a.name, '198.18.8.1/24'])
  t.is(ra.exitCode, 0, ra.stderr)
  t.is(ra.stdout.split('\n')[0], `# plumb attach-veth ${a.name} ${br} 198.18.8.1/24 -i eth1`)
  const rb = await runCli(['pipework', br, b.name, '198.18.8.2/24', `U:${b.name}`])
  t.is(rb.exitCode, 0, rb.stderr)
  t.is(await inC(b, 'cat', '/sys/class/net/eth1/address'), pipeworkMac(b.name))
  const p = await shQuiet('docker', ['exec', a.name, 'ping', '-c', '1', '-W', '2', '198.18.8.2'])
  t.is(p.exitCode, 0, `a reaches b: ${p.stdout}${p.stderr}`)
  t.is((await runCli(['detach', a.name, '--all'])).exitCode, 0)
  t.is((await runCli(['detach', b.name, '--all'])).exitCode, 0)
})

/** podman answers and has the test image (a non-zero `podman image exists` throws). */
function hasPodmanImage(): boolean {
  if (!hasBinary('podman')) return false
  try {
    execFileSync('podman', ['image', 'exists', TEST_IMAGE], { stdio: 'ignore', timeout: 20_000 })
    return true
  } catch {
    return false
  }
}
const withPodman = testIf(isRoot && hasPodmanImage(), 'names-docker: the Podman case needs podman with plumb-test:busybox (scripts/testbed.sh up loads it)')

withPodman('names on a Podman container (found through podman inspect): its own files and hostname, --del restores them', async (t) => {
  const hostBefore = digest()
  const name = uniq()
  t.teardown(async () => void (await shQuiet('podman', ['rm', '-f', '-t', '0', name])))
  // TESTBED.md: podman run here needs explicit rlimits
  await sh('podman', ['run', '-d', '--net=none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--name', name, TEST_IMAGE, 'sleep', '100000'])
  // Podman gives a --net=none container no /etc/resolv.conf: plumb creates it, and --del removes it
  const cat = async (f: string): Promise<string> => {
    const r = await shQuiet('podman', ['exec', name, 'cat', f])
    return r.exitCode === 0 ? r.stdout : `(no ${f})`
  }
  const before = [await cat('/etc/hosts'), await cat('/etc/resolv.conf'), await sh('podman', ['exec', name, 'hostname'])]
  const r = await runCli(['names', `podman:${name}`, '--hostname', 'pt-pod', '--add-host', 'pt-db:198.18.9.5', '--dns', '198.18.9.53'])
  t.is(r.exitCode, 0, r.stderr)
  t.regex(await cat('/etc/hosts'), /^198\.18\.9\.5\tpt-db\t# plumb$/m)
  t.regex(await cat('/etc/resolv.conf'), /^nameserver 198\.18\.9\.53$/m)
  t.is(await sh('podman', ['exec', name, 'hostname']), 'pt-pod')
  const d = await runCli(['names', `podman:${name}`, '--del'])
  t.is(d.exitCode, 0, d.stderr)
  t.deepEqual([await cat('/etc/hosts'), await cat('/etc/resolv.conf'), await sh('podman', ['exec', name, 'hostname'])], before)
  t.deepEqual(digest(), hostBefore)
})

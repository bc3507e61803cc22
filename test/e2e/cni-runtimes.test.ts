// plumb as a CNI plugin under real runtimes: containerd's `ctr run --cni` (dockerd's own
// containerd) and Podman's CNI backend, with the test image. Two containers reach each other
// (ping, TCP, UDP); DEL comes as each runtime sends it (ctr's foreground run: empty CNI_NETNS
// after the task is gone; `ctr run -d` never: the DEL a CRI would send comes after the container
// is gone); host-local's store, plumb's records and the kernel are read back after each.

import { execa } from 'execa'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { REFERENCE_PLUGINS, TEST_IMAGE, assertTraffic, execPlugin, hasBinary, hasDocker, isRoot, runCli, sh, shQuiet, testIf, uniq, waitFor, reserveOctet } from '../helpers/index.js'
import type { Teardown } from '../helpers/index.js'
import { removeBridgeRules } from '../../lib/ops/firewall.js'
import { DEFAULT_CNI_BIN_DIR } from '../../lib/paths.js'

const CONTAINERD = '/var/run/docker/containerd/containerd.sock'
const withCtr = testIf(isRoot && hasDocker() && hasBinary('ctr') && existsSync(CONTAINERD) && existsSync(`${REFERENCE_PLUGINS}/host-local`), `cni-runtimes: needs root, dockerd with ${TEST_IMAGE}, ctr and ${CONTAINERD}, and ${REFERENCE_PLUGINS}/host-local`)
const withPodman = testIf(isRoot && hasDocker() && hasBinary('podman') && existsSync(`${REFERENCE_PLUGINS}/host-local`), `cni-runtimes: needs root, podman (scripts/testbed.sh up installs it), dockerd with ${TEST_IMAGE} to export it`)

interface Net {
  name: string
  bridge: string
  dir: string
  octet: number
  conflist: Record<string, unknown>
  reserved(): string[]
  records(): string[]
}

function network(t: Teardown): Net {
  const name = uniq()
  const bridge = uniq('b', { dash: false })
  const dir = mkdtempSync(`/tmp/${name}-`)
  const octet = reserveOctet(t, '198.18', [100, 250])
  t.teardown(async () => {
    await shQuiet('ip', ['link', 'del', bridge])
    await removeBridgeRules(bridge).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  })
  const list = (d: string): string[] => {
    try {
      return readdirSync(d)
    } catch {
      return []
    }
  }
  return {
    name,
    bridge,
    dir,
    octet,
    conflist: {
      cniVersion: '1.0.0',
      name,
      plugins: [
        {
          type: 'plumb',
          op: 'attach-veth',
          bridge,
          dataDir: `${dir}/plumb`,
          ipam: { type: 'host-local', dataDir: `${dir}/ipam`, ranges: [[{ subnet: `198.18.${octet}.0/24`, gateway: `198.18.${octet}.1` }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
      ],
    },
    reserved: () => list(`${dir}/ipam/${name}`).filter((f) => f.startsWith('198.18.')),
    records: () => list(`${dir}/plumb/${name}`),
  }
}

const addrOf = async (pid: number): Promise<string> => {
  const out = await sh('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])
  return /inet (\S+)\//.exec(out)?.[1] ?? ''
}

withCtr("containerd's ctr run --cni: two containers reach each other; a foreground run's DEL (empty CNI_NETNS) and a DEL after a detached container is gone leave nothing", async (t) => {
  t.timeout(180_000)
  const net = network(t)
  const ns = net.name
  const ctr = (...args: string[]) => sh('ctr', ['-a', CONTAINERD, '-n', ns, ...args], { timeout: 60_000 })
  const ctrQuiet = (...args: string[]) => shQuiet('ctr', ['-a', CONTAINERD, '-n', ns, ...args])
  // ctr reads the first config of /etc/cni/net.d (go-cni's default) and finds plugins in
  // /opt/cni/bin: ours sorts first, and goes; the launcher goes only if this test wrote it.
  const conf = `/etc/cni/net.d/00-${ns}.conflist`
  const hadLauncher = existsSync(`${DEFAULT_CNI_BIN_DIR}/plumb`)
  // Dirs made here for the launcher go once it has (teardowns run last-registered first; rmdir
  // refuses a dir that holds anything).
  const made = [DEFAULT_CNI_BIN_DIR, '/opt/cni'].filter((d) => !existsSync(d))
  t.teardown(async () => {
    for (const d of made) await shQuiet('rmdir', [d])
  })
  t.teardown(() => rmSync(conf, { force: true }))
  // go-cni keeps each ADD's result in libcni's cache; a `-d` container's never meets a DEL.
  t.teardown(() => {
    const cache = '/var/lib/cni/results'
    if (existsSync(cache)) for (const f of readdirSync(cache)) if (f.startsWith(`${ns}-`)) rmSync(`${cache}/${f}`, { force: true })
  })
  if (!hadLauncher) t.teardown(() => runCli(['cni', 'install', '--del']).then(() => undefined))
  const first = readdirSync('/etc/cni/net.d').filter((f) => /\.(conf|conflist|json)$/.test(f)).sort()[0]
  if (first && first < `00-${ns}.conflist`) t.log(`note: ${first} sorts before this test's config`)
  t.is((await runCli(['cni', 'install'])).exitCode, 0)
  // and doctor sees it as this plumb's
  const doctor = await runCli(['doctor', '--json'])
  t.like((doctor.json as { checks: Array<{ name: string }> }).checks.find((c) => c.name === 'CNI launcher'), { ok: true, detail: `${DEFAULT_CNI_BIN_DIR}/plumb runs this plumb` })
  writeFileSync(conf, JSON.stringify(net.conflist))

  t.teardown(async () => {
    for (const c of ['pt-a', 'pt-b', 'pt-c']) {
      await ctrQuiet('task', 'kill', '-s', 'KILL', c)
      await ctrQuiet('task', 'rm', '-f', c)
      await ctrQuiet('container', 'rm', c)
    }
    await ctrQuiet('images', 'rm', `docker.io/library/${TEST_IMAGE}`)
    // Snapshots and blobs go asynchronously after the image: the namespace empties a moment later.
    await waitFor(async () => (await shQuiet('ctr', ['-a', CONTAINERD, 'namespaces', 'rm', ns])).exitCode === 0 || !(await sh('ctr', ['-a', CONTAINERD, 'namespaces', 'ls', '-q'])).split('\n').includes(ns), { timeout: 20_000, what: `ctr namespace ${ns} removed` }).catch(async () => {
      for (const s of (await ctrQuiet('snapshots', 'ls')).stdout.split('\n').slice(1)) if (s.trim()) await ctrQuiet('snapshots', 'rm', s.split(/\s+/)[0]!)
      for (const c of (await ctrQuiet('content', 'ls', '-q')).stdout.split('\n')) if (c.trim()) await ctrQuiet('content', 'rm', c.trim())
      await shQuiet('ctr', ['-a', CONTAINERD, 'namespaces', 'rm', ns])
    })
  })
  await execa('sh', ['-c', `docker save ${TEST_IMAGE} | ctr -a ${CONTAINERD} -n ${ns} images import -`])
  const image = `docker.io/library/${TEST_IMAGE}`

  for (const c of ['pt-a', 'pt-b']) await ctr('run', '-d', '--cni', image, c, 'sleep', '100000')
  const pidOf = async (c: string): Promise<number> => Number(/\s(\d+)\s/.exec((await ctr('task', 'ls')).split('\n').find((l) => l.startsWith(`${c} `)) ?? '')?.[1])
  const [pa, pb] = [await pidOf('pt-a'), await pidOf('pt-b')]
  const [ia, ib] = [await addrOf(pa), await addrOf(pb)]
  t.regex(ia, new RegExp(`^198\\.18\\.${net.octet}\\.`))
  t.deepEqual(net.reserved().sort(), [ia, ib].sort())
  t.deepEqual(net.records().sort(), [`${ns}-pt-a:eth0`, `${ns}-pt-b:eth0`].sort(), "the container id is ctr's namespace-name")
  await assertTraffic(t, { pid: pa }, { pid: pb }, ib, 'pt-a to pt-b')
  await assertTraffic(t, { pid: pb }, { pid: pa }, ia, 'pt-b to pt-a')
  // The container's own busybox, too: by its exit status (a reply received), which ctr hands back;
  // its output through ctr exec's pipes came back empty once, the ping answered (CI, 2026-12-01)
  const ping = await ctrQuiet('task', 'exec', '--exec-id', uniq(), 'pt-b', 'ping', '-c', '1', '-W', '2', ia)
  t.is(ping.exitCode, 0, `ping from pt-b's own busybox: ${ping.stdout} ${ping.stderr}`)

  // A foreground run: ctr sends DEL with CNI_NETNS empty once the task has exited.
  const fg = await execa('ctr', ['-a', CONTAINERD, '-n', ns, 'run', '--rm', '--cni', image, 'pt-c', 'sh', '-c', `ping -c 1 -W 2 ${ia} >/dev/null && ip -4 -o addr show dev eth0`], { reject: false, timeout: 60_000 })
  t.is(fg.exitCode, 0, fg.stderr)
  t.regex(fg.stdout, new RegExp(`inet 198\\.18\\.${net.octet}\\.`))
  t.notRegex(fg.stderr, /network review|failed \(delete\)/, 'the DEL succeeded')
  t.deepEqual(net.reserved().sort(), [ia, ib].sort(), "pt-c's address was released by its DEL")
  t.false(net.records().includes(`${ns}-pt-c:eth0`))

  // `ctr run -d` never sends DEL: the container goes, then the DEL a CRI runtime would send.
  await ctr('task', 'kill', '-s', 'KILL', 'pt-b')
  await waitFor(async () => !(await ctr('task', 'ls')).includes('pt-b ') || (await ctr('task', 'ls')).includes('STOPPED'), { what: 'pt-b stopped' })
  await ctr('task', 'rm', 'pt-b')
  await ctr('container', 'rm', 'pt-b')
  const plugin = (net.conflist.plugins as Array<Record<string, unknown>>)[0]!
  const del = await execPlugin(`${DEFAULT_CNI_BIN_DIR}/plumb`, 'DEL', { containerId: `${ns}-pt-b`, netns: `/proc/${pb}/ns/net`, ifname: 'eth0' }, { cniVersion: '1.0.0', name: ns, ...plugin }, [DEFAULT_CNI_BIN_DIR, REFERENCE_PLUGINS])
  t.is(del.exitCode, 0, del.stdout)
  t.deepEqual(net.reserved(), [ia])
  t.deepEqual(net.records(), [`${ns}-pt-a:eth0`])
})

withPodman("Podman's CNI backend: two containers reach each other; podman stop and rm -f send DELs that leave nothing", async (t) => {
  t.timeout(180_000)
  const net = network(t)
  const bin = `${net.dir}/bin`
  const netd = `${net.dir}/net.d`
  // Everything private: plugin dir, config dir, storage (vfs: no overlay mounts to leak), run dirs.
  t.is((await runCli(['cni', 'install', '--dir', bin])).exitCode, 0)
  await sh('mkdir', ['-p', netd])
  writeFileSync(`${netd}/${net.name}.conflist`, JSON.stringify(net.conflist))
  writeFileSync(`${net.dir}/containers.conf`, `[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ["${bin}", "${REFERENCE_PLUGINS}"]\nnetwork_config_dir = "${netd}"\n`)
  const env = { CONTAINERS_CONF: `${net.dir}/containers.conf` }
  const podmanArgs = ['--root', `${net.dir}/root`, '--runroot', `${net.dir}/runroot`, '--tmpdir', `${net.dir}/tmp`, '--storage-driver', 'vfs', '--network-backend', 'cni', '--network-config-dir', netd]
  const podman = (...args: string[]) => sh('podman', [...podmanArgs, ...args], { env, timeout: 90_000 })
  t.teardown(async () => {
    await execa('podman', [...podmanArgs, 'rm', '-f', '-t', '0', '-a'], { env, reject: false })
    await execa('podman', [...podmanArgs, 'rmi', '-a', '-f'], { env, reject: false })
  })
  await execa('sh', ['-c', `docker save ${TEST_IMAGE} | podman ${podmanArgs.join(' ')} load`], { env })
  const run = (name: string) => podman('run', '-d', '--name', name, '--network', net.name, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', TEST_IMAGE, 'sleep', '100000')
  const [ida, idb] = [await run('pt-a'), await run('pt-b')]
  const pidOf = async (c: string): Promise<number> => Number(await podman('inspect', '-f', '{{.State.Pid}}', c))
  const [pa, pb] = [await pidOf('pt-a'), await pidOf('pt-b')]
  const [ia, ib] = [await addrOf(pa), await addrOf(pb)]
  t.regex(ib, new RegExp(`^198\\.18\\.${net.octet}\\.`))
  t.deepEqual(net.records().sort(), [`${ida}:eth0`, `${idb}:eth0`].sort(), "the container id is podman's")
  t.regex(await podman('exec', 'pt-a', 'ping', '-c', '1', '-W', '2', ib), /1 packets received/)
  await assertTraffic(t, { pid: pb }, { pid: pa }, ia, 'pt-b to pt-a')
  await assertTraffic(t, { pid: pa }, { pid: pb }, ib, 'pt-a to pt-b')

  // stop: the netns goes and podman tears the network down (DEL) with it.
  await podman('stop', '-t', '0', 'pt-b')
  await waitFor(() => !net.records().includes(`${idb}:eth0`), { timeout: 15_000, what: "pt-b's record gone after podman stop" })
  t.deepEqual(net.reserved(), [ia])
  await podman('rm', '-f', '-t', '0', 'pt-a')
  t.deepEqual(net.reserved(), [])
  t.deepEqual(net.records(), [])
  t.false((await sh('ip', ['-o', 'link', 'show'])).includes(`master ${net.bridge} `), 'no port left on the bridge')
})

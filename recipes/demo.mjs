#!/usr/bin/env node
// The demo: two --net=none guests plumbed onto one bridge by plumb's library API, shown to
// reach each other, listed with `plumb ls`, and torn down. Docker containers when an engine is
// reachable, otherwise two `ip netns` stand-ins. Run as root: node recipes/demo.mjs
// --prefix P names things P-a, P-b and bridge P-br instead (the test suite runs it with a pt-
// prefix); --netns uses ip netns guests even when Docker is there.
import { $, argv, chalk } from 'zx'
import { attachVeth, detach, formatLs, ls } from 'plumb'

$.verbose = false
$.quiet = true
const demoPrefix = argv.prefix ? String(argv.prefix) : undefined
const bridge = demoPrefix ? `${demoPrefix}-br` : 'plumbdemo0'
const names = demoPrefix ? [`${demoPrefix}-a`, `${demoPrefix}-b`] : ['plumb-demo-a', 'plumb-demo-b']
if (Buffer.byteLength(bridge) > 15) {
  console.error(`bridge name "${bridge}" is over 15 bytes (an interface name): use a --prefix of at most 12 bytes`)
  process.exit(2)
}
const ips = ['198.18.50.10/24', '198.18.50.11/24']
const step = (text) => console.log(chalk.bold(`\n==> ${text}`))

const haveDocker = !argv.netns && (await $`docker image inspect plumb-test:busybox`.nothrow()).exitCode === 0
const guests = haveDocker ? names : names.map((n) => `netns:${n}`)

async function cleanup() {
  for (const g of guests) await detach({ guest: g, all: true }).catch(() => {})
  if (haveDocker) await $`docker rm -f ${names}`.nothrow()
  else for (const n of names) await $`ip netns del ${n}`.nothrow()
}

try {
  step(haveDocker ? 'two containers with --net=none (Docker)' : 'no Docker engine: two ip netns stand-ins')
  await cleanup()
  for (const n of names) {
    if (haveDocker) await $`docker run -d --net=none --name ${n} plumb-test:busybox sleep 100000`
    else await $`ip netns add ${n}`
  }
  console.log(guests.join(', '))

  step(`plumb attach-veth GUEST ${bridge} ADDR (library API, one transaction each)`)
  for (const [i, g] of guests.entries()) {
    const r = await attachVeth({ guest: g, bridge, ips: [ips[i]] })
    for (const m of r.messages) console.log(m)
  }

  step('they reach each other')
  const from = haveDocker ? ['docker', 'exec', names[0]] : ['ip', 'netns', 'exec', names[0]]
  const ping = await $`${from} ping -c 2 -W 2 ${ips[1].split('/')[0]}`.nothrow()
  console.log(ping.stdout.trim())
  if (ping.exitCode !== 0) throw new Error('the guests could not reach each other')
  console.log(chalk.green('ok: the guests reach each other over the bridge'))

  step('plumb ls (what plumb made, read back from the kernel: owner marks on the links)')
  for (const g of guests) console.log(formatLs(await ls({ guest: g })))

  step('idempotent: the same attach again changes nothing')
  const again = await attachVeth({ guest: guests[0], bridge, ips: [ips[0]] })
  console.log(again.messages.join('\n'))
  if (again.changed) throw new Error('the second attach changed something')
  console.log(chalk.green('ok: the second attach changed nothing'))
} catch (err) {
  console.error(chalk.red(`FAILED: ${err.message}`))
  process.exitCode = 1
} finally {
  step('tear down: plumb detach --all, then the guests')
  for (const g of guests) {
    const r = await detach({ guest: g, all: true }).catch((e) => ({ messages: [String(e.message)] }))
    console.log(r.messages.join('\n'))
  }
  await cleanup()
  console.log(chalk.green('\ndone: nothing left behind'))
}

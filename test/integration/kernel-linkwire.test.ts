// linkFromWire (plumb's direct read of RTM_NEWLINK payloads, on the attach path) against the
// netlink package's full parse + toLinkInfo, on a real dump of the host's links with a bridge
// carrying an alias, an enslaved veth pair and a private-mode macvlan made for the test.

import test from 'ava'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { FlagsGet, rt } from '../../lib/kernel/netlink.js'
import { linkFromWire, toLinkInfo } from '../../lib/kernel/parse.js'
import { RtSocket } from '../../lib/kernel/socket.js'

const root = process.geteuid?.() === 0
const maybe = root ? test : test.skip
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' })

maybe('linkFromWire reads every link of a real dump as the package parse + toLinkInfo does', async (t) => {
  const id = `pt${randomBytes(3).toString('hex')}`
  ip('link', 'add', `${id}b`, 'type', 'bridge')
  t.teardown(() => {
    for (const n of [`${id}m`, `${id}a`, `${id}b`]) {
      try {
        ip('link', 'del', n)
      } catch {
        // gone with its peer or parent
      }
    }
  })
  ip('link', 'set', `${id}b`, 'alias', 'plumb:1 role=bridge op=attach-veth br=x%20y')
  ip('link', 'add', `${id}a`, 'mtu', '1400', 'master', `${id}b`, 'up', 'type', 'veth', 'peer', 'name', `${id}p`)
  ip('link', 'add', `${id}m`, 'link', `${id}p`, 'type', 'macvlan', 'mode', 'private')

  const sock = new RtSocket()
  t.teardown(() => sock.close())
  // RTM_GETLINK dump, no stats (IFLA_EXT_MASK), as plumb asks
  const payload = Buffer.alloc(16)
  const extMask = Buffer.from([8, 0, 29, 0, 8, 0, 0, 0])
  const msgs = await sock.request(18, [payload, extMask], FlagsGet.DUMP, { op: 'RTM_GETLINK', timeoutMs: 5000 })
  const links = msgs.filter((m) => m.type === 16)
  t.true(links.length >= 5, 'the dump has the test links and the host links')
  for (const m of links) {
    t.deepEqual(linkFromWire(m.data), toLinkInfo(rt.parseMessage(m.type, m.data) as rt.LinkMessage))
  }
  const byName = new Map(links.map((m) => linkFromWire(m.data)).map((l) => [l.name, l]))
  // and they are what ip says, so the comparison above compares something
  t.is(byName.get(`${id}b`)?.kind, 'bridge')
  t.is(byName.get(`${id}b`)?.alias, 'plumb:1 role=bridge op=attach-veth br=x%20y')
  t.is(byName.get(`${id}a`)?.mtu, 1400)
  t.is(byName.get(`${id}a`)?.master, byName.get(`${id}b`)?.index)
  t.is(byName.get(`${id}a`)?.slaveKind, 'bridge')
  t.is(byName.get(`${id}a`)?.link, byName.get(`${id}p`)?.index)
  t.is(byName.get(`${id}m`)?.macvlanMode, 'private')
  t.is(byName.get(`${id}m`)?.mac, JSON.parse(ip('-j', 'link', 'show', `${id}m`))[0].address)
})

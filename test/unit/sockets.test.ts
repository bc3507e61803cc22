// Who holds a host port: /proc/net/{tcp,udp}{,6} lines as sockets (lib/firewall/sockets.ts).

import test from 'ava'
import { covers, parseProcNet } from '../../lib/firewall/sockets.js'

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'

test('IPv4 TCP: listeners and connections, address and port decoded', (t) => {
  const text = [
    HEAD,
    '   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4711 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4712 1 0000000000000000 100 0 0 10 0',
    '   2: 0A0012C6:8A2C 010012C6:0050 01 00000000:00000000 00:00000000 00000000     0        0 4713 1 0000000000000000 20 4 30 10 -1',
  ].join('\n')
  t.deepEqual(parseProcNet(text, 'tcp', false), [
    { proto: 'tcp', address: '0.0.0.0', port: 8080, listening: true, inode: 4711 },
    { proto: 'tcp', address: '127.0.0.1', port: 53, listening: true, inode: 4712 },
    { proto: 'tcp', address: '198.18.0.10', port: 35372, listening: false, inode: 4713 },
  ])
})

test('IPv6 and UDP: the wildcard, a v4-mapped address and a bound UDP socket', (t) => {
  const text = [
    HEAD,
    '   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10 1 0',
    '   1: 0000000000000000FFFF00000A0012C6:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1 0',
    '   2: B80D01200000EE7A0000000001000000:9890 B80D01200000EE7A0000000010000000:8544 06 00000000:00000000 03:0000109B 00000000     0        0 0 3 0',
  ].join('\n')
  t.deepEqual(
    parseProcNet(text, 'tcp', true).map((s) => [s.address, s.port, s.listening]),
    [
      ['::', 8080, true],
      ['198.18.0.10', 80, true],
      ['2001:db8:7aee:0:0:0:0:1', 39056, false],
    ],
  )
  const udp = `${HEAD}\n  12: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0 0\n`
  t.deepEqual(parseProcNet(udp, 'udp', false), [{ proto: 'udp', address: '0.0.0.0', port: 5353, listening: true, inode: 99 }])
  t.deepEqual(parseProcNet('', 'udp', false), [])
})

test('covers: which sockets take a publish on HOSTIP (or on every address)', (t) => {
  t.true(covers('0.0.0.0', '198.18.0.1'))
  t.true(covers('::', '198.18.0.1'), 'a dual-stack wildcard takes IPv4 too')
  t.true(covers('198.18.0.1', ''), 'publishing on every address includes that one')
  t.true(covers('127.0.0.1', '127.0.0.1'))
  t.false(covers('127.0.0.1', '198.18.0.1'))
  t.false(covers('2001:db8::1', ''), 'an IPv6 address is not in the way of an IPv4 publish')
})

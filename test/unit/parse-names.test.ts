// Table tests for names' and sysctl's input (lib/parse/names.ts, lib/parse/sysctl.ts) and the
// pure edits of /etc/hosts and /etc/resolv.conf that carry plumb's marks.

import test from 'ava'
import { usage } from '../helpers/assert.js'
import {
  HOSTS_MARK,
  RESOLV_BEGIN,
  RESOLV_END,
  addHosts,
  parseAddHost,
  parseDnsOption,
  parseDnsSearch,
  parseDnsServer,
  parseHostname,
  parseSysctlKey,
  parseSysctlSetting,
  plumbHosts,
  plumbResolv,
  removeHosts,
  renderResolv,
  sameSysctlValue,
  stripResolv,
} from '../../lib/parse/index.js'

test('--add-host NAME:ADDR, IPv4 and IPv6 (the name ends at the first colon)', (t) => {
  t.deepEqual(parseAddHost('db:198.18.0.5'), { name: 'db', address: '198.18.0.5' })
  t.deepEqual(parseAddHost('db.lab.example:2001:DB8::5'), { name: 'db.lab.example', address: '2001:db8::5' })
  usage(t, () => parseAddHost('db'), { message: /expected NAME:ADDR/, hint: /--add-host db:198\.18\.0\.5/ })
  usage(t, () => parseAddHost(':198.18.0.5'), { message: /expected NAME:ADDR/ })
  usage(t, () => parseAddHost('d_b:198.18.0.5'), { message: /invalid host name/ })
  usage(t, () => parseAddHost('db:198.18.0.256'), { message: /octet 256/ })
  usage(t, () => parseAddHost('db:198.18.0.5/24'), { message: /invalid IPv4/ })
})

test('hostname, DNS server, search domain and option', (t) => {
  t.is(parseHostname('web'), 'web')
  t.is(parseHostname('web-1.lab.example'), 'web-1.lab.example')
  usage(t, () => parseHostname('-web'), { message: /invalid hostname/ })
  usage(t, () => parseHostname(`${'a'.repeat(60)}.${'b'.repeat(10)}`), { message: /longer than 64 bytes/ })
  t.is(parseDnsServer('198.18.0.53'), '198.18.0.53')
  t.is(parseDnsServer('2001:db8::35'), '2001:db8::35')
  usage(t, () => parseDnsServer('ns1.example'), { message: /invalid IPv4 DNS server address/ })
  t.is(parseDnsSearch('lab.example.'), 'lab.example')
  usage(t, () => parseDnsSearch('lab example'), { message: /invalid search domain/ })
  t.is(parseDnsOption('ndots:2'), 'ndots:2')
  t.is(parseDnsOption('rotate'), 'rotate')
  usage(t, () => parseDnsOption('ndots 2'), { message: /invalid --dns-option/, hint: /ndots:2/ })
})

const HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n'

test('hosts: plumb appends marked lines, finds them again, and removes only its own', (t) => {
  const one = addHosts(HOSTS, [{ name: 'db', address: '198.18.0.5' }])
  t.is(one, `${HOSTS}198.18.0.5\tdb\t${HOSTS_MARK}\n`)
  t.is(addHosts(one, [{ name: 'db', address: '198.18.0.5' }]), one, 'an entry already there is not repeated')
  const two = addHosts(one, [{ name: 'cache', address: '198.18.0.6' }])
  t.deepEqual(plumbHosts(two), [
    { address: '198.18.0.5', name: 'db' },
    { address: '198.18.0.6', name: 'cache' },
  ])
  t.is(removeHosts(two, [{ name: 'db', address: '198.18.0.5' }]), `${HOSTS}198.18.0.6\tcache\t${HOSTS_MARK}\n`)
  t.is(removeHosts(two), HOSTS, 'all of plumb\'s lines go, the others stay byte for byte')
  t.deepEqual(plumbHosts(`${HOSTS}198.18.0.9 other # a comment\n`), [], 'a line without the mark is not plumb\'s')
  t.is(addHosts('', [{ name: 'db', address: '198.18.0.5' }]), `198.18.0.5\tdb\t${HOSTS_MARK}\n`)
})

const RESOLV = 'nameserver 10.0.0.53\nsearch corp.example\noptions edns0\n'

test('resolv.conf: plumb\'s block goes first, the lines it overrides stay commented, and strip gives the original back', (t) => {
  const set = renderResolv(RESOLV, { nameservers: ['198.18.0.53'], search: ['lab.example'] })
  t.is(
    set,
    [RESOLV_BEGIN, 'nameserver 198.18.0.53', 'search lab.example', RESOLV_END, '# plumb-replaced: nameserver 10.0.0.53', '# plumb-replaced: search corp.example', 'options edns0', ''].join('\n'),
  )
  t.deepEqual(plumbResolv(set), { nameservers: ['198.18.0.53'], search: ['lab.example'] })
  t.is(stripResolv(set), RESOLV)
  t.is(renderResolv(set, plumbResolv(set)), set, 'rendering what is there changes nothing (idempotent)')
  const more = renderResolv(set, { ...plumbResolv(set), options: ['ndots:2'] })
  t.deepEqual(plumbResolv(more), { nameservers: ['198.18.0.53'], search: ['lab.example'], options: ['ndots:2'] })
  t.is(stripResolv(more), RESOLV, 'the original comes back however many times plumb re-rendered')
  t.is(renderResolv(more, {}), RESOLV, 'an empty want is the original')
  t.deepEqual(plumbResolv(RESOLV), {})
})

test('sysctl keys: per-netns families only, dotted or slashed, interface names with dots', (t) => {
  t.deepEqual(parseSysctlKey('net.ipv4.ip_forward'), { key: 'net.ipv4.ip_forward', path: 'ipv4/ip_forward' })
  t.deepEqual(parseSysctlKey('net/ipv4/ip_forward'), { key: 'net.ipv4.ip_forward', path: 'ipv4/ip_forward' })
  t.deepEqual(parseSysctlKey('net.ipv4.conf.eth1.rp_filter'), { key: 'net.ipv4.conf.eth1.rp_filter', path: 'ipv4/conf/eth1/rp_filter', ifname: 'eth1' })
  t.deepEqual(parseSysctlKey('net.ipv6.conf.all.disable_ipv6'), { key: 'net.ipv6.conf.all.disable_ipv6', path: 'ipv6/conf/all/disable_ipv6', ifname: 'all' })
  t.deepEqual(parseSysctlKey('net.ipv4.conf.eth0/10.forwarding'), { key: 'net.ipv4.conf.eth0/10.forwarding', path: 'ipv4/conf/eth0.10/forwarding', ifname: 'eth0.10' })
  t.deepEqual(parseSysctlKey('net/ipv4/conf/eth0.10/forwarding'), { key: 'net.ipv4.conf.eth0/10.forwarding', path: 'ipv4/conf/eth0.10/forwarding', ifname: 'eth0.10' })
  t.deepEqual(parseSysctlKey('net.ipv4.neigh.default.gc_thresh1'), { key: 'net.ipv4.neigh.default.gc_thresh1', path: 'ipv4/neigh/default/gc_thresh1', ifname: 'default' })
  t.deepEqual(parseSysctlKey('net.core.somaxconn'), { key: 'net.core.somaxconn', path: 'core/somaxconn' })
  t.deepEqual(parseSysctlKey('net.netfilter.nf_conntrack_tcp_timeout_established').path, 'netfilter/nf_conntrack_tcp_timeout_established')
  for (const [key, why] of [
    ['kernel.hostname', /not per network namespace/],
    ['vm.swappiness', /not per network namespace/],
    ['net.core.rmem_max', /not per network namespace/],
    ['net.bridge.bridge-nf-call-iptables', /not per network namespace/],
    ['net.ipv4.tcp_mem', /not per network namespace/],
    ['net.ipv4.conf.eth1', /needs an interface and a key/],
    ['net.ipv4', /invalid sysctl key/],
    ['net.ipv4.conf.../x', /invalid sysctl key/],
    ['', /invalid sysctl key/],
  ] as const) {
    usage(t, () => parseSysctlKey(key), { message: why })
  }
})

test('sysctl settings: KEY=VALUE, values with blanks, and values compared as sysctl(8) prints them', (t) => {
  t.deepEqual(parseSysctlSetting('net.ipv4.ip_forward=1'), { key: 'net.ipv4.ip_forward', path: 'ipv4/ip_forward', value: '1' })
  t.is(parseSysctlSetting('net.ipv4.ip_local_port_range=20000 30000').value, '20000 30000')
  usage(t, () => parseSysctlSetting('net.ipv4.ip_forward'), { message: /expected KEY=VALUE/ })
  usage(t, () => parseSysctlSetting('net.ipv4.ip_forward='), { message: /invalid value/ })
  usage(t, () => parseSysctlSetting('net.ipv4.ip_forward=1\n0'), { message: /invalid value/ })
  t.true(sameSysctlValue('32768\t60999', '32768 60999'))
  t.false(sameSysctlValue('1', '0'))
})

// Unit tests (no root) for the pure conversions between rtnetlink messages and LinkInfo/AddrInfo/RouteInfo.

import test from 'ava'
import { ifla } from 'netlink'
import { AttrStream } from 'netlink'
import type { StreamData } from 'netlink'
import { rt } from '../../lib/kernel/netlink.js'
import { addrFromWire, formatIp, formatMac, linkFromWire, parseCidr, parseDst, parseMac, toRouteInfo } from '../../lib/kernel/parse.js'

const flat = (sd: StreamData): Buffer => {
  const s = new AttrStream()
  s.emit(sd)
  return Buffer.concat(s.bufs)
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}

test('MAC and IP text <-> bytes', (t) => {
  t.is(formatMac(Buffer.from([2, 0x42, 0xc6, 0x12, 0, 0x0a])), '02:42:c6:12:00:0a')
  t.deepEqual([...parseMac('02:42:C6:12:00:0a')], [2, 0x42, 0xc6, 0x12, 0, 0x0a])
  t.deepEqual([...parseMac('2-42-c6-12-0-a')], [2, 0x42, 0xc6, 0x12, 0, 0x0a])
  t.throws(() => parseMac('02:42:c6:12:00'))
  t.throws(() => parseMac('zz:42:c6:12:00:0a'))
  t.is(formatIp(Buffer.from([198, 18, 0, 1])), '198.18.0.1')
  t.is(formatIp(Buffer.from(parseCidr('2001:db8:0:0:0:0:0:1').bytes)), '2001:db8::1')
  t.deepEqual(parseCidr('198.18.0.2/24'), { family: 4, bytes: Buffer.from([198, 18, 0, 2]), prefix: 24 })
  t.is(parseCidr('2001:db8::2').prefix, 128)
  t.throws(() => parseCidr('198.18.0.2/33'))
  // a plain dotted quad is read directly; any other IPv4 form is still ipaddr.js's to read (or refuse)
  t.deepEqual(parseCidr('255.255.255.255/32').bytes, Buffer.from([255, 255, 255, 255]))
  t.deepEqual(parseCidr('010.0.0.1/8').bytes, Buffer.from([8, 0, 0, 1]), 'leading zero: octal, as before')
  t.throws(() => parseCidr('198.18.0.256/24'))
  t.deepEqual(parseCidr('198.18.0/24').bytes, Buffer.from([198, 18, 0, 0]), "ipaddr.js's three-part form, as before")
})

test('parseDst zeroes host bits (the kernel refuses them) and keeps default', (t) => {
  t.deepEqual(parseDst('default', 4), { prefix: 0 })
  t.deepEqual(parseDst('198.18.50.7/24', 4), { bytes: Buffer.from([198, 18, 50, 0]), prefix: 24 })
  t.deepEqual(parseDst('198.18.255.255/15', 4), { bytes: Buffer.from([198, 18, 0, 0]), prefix: 15 })
  t.is(formatIp(parseDst('2001:db8:1:2::5/60', 6).bytes!), '2001:db8:1::')
  t.throws(() => parseDst('2001:db8::/64', 4))
})

/** An RTM_NEWLINK payload as the kernel sends it, made with the netlink package's formatter. */
const wire = (msg: rt.LinkMessage): Buffer => {
  const s = new AttrStream()
  rt.formatLinkMessage(msg, s)
  return Buffer.concat(s.bufs)
}

test('linkFromWire: kind, slave kind, macvlan mode, vlan id, master, alias, peer link, operstate', (t) => {
  const linkinfo = flat(ifla.formatInfo({ kind: 'macvlan', data: flat(ifla.formatMacvlan({ mode: 4 })), slaveKind: 'bridge' }))
  const l = linkFromWire(
    wire({
      kind: 'link',
      data: { index: 7, type: 1, flags: { up: true } },
      attrs: { ifname: 'mv0', mtu: 1400, address: Buffer.from([2, 0, 0, 0, 0, 1]), operstate: 6, master: 3, ifalias: 'plumb:x', link: u32(5), linkNetnsid: 0, linkinfo },
    }),
  )
  t.deepEqual(l, { index: 7, name: 'mv0', mtu: 1400, up: true, operState: 'UP', linkType: 'ether', mac: '02:00:00:00:00:01', master: 3, alias: 'plumb:x', link: 5, linkNetnsId: 0, kind: 'macvlan', slaveKind: 'bridge', macvlanMode: 'bridge' })

  const vlan = linkFromWire(wire({ kind: 'link', data: { index: 9 }, attrs: { ifname: 'eth0.5', linkinfo: flat(ifla.formatInfo({ kind: 'vlan', data: flat(ifla.formatVlan({ id: 5 })) })) } }))
  t.is(vlan.vlanId, 5)
  t.is(vlan.up, false)
  t.is(vlan.operState, 'UNKNOWN')

  const lo = linkFromWire(wire({ kind: 'link', data: { index: 1, type: 772, flags: { up: true, loopback: true } }, attrs: { ifname: 'lo', mtu: 65536, operstate: 0, ifalias: '' } }))
  t.deepEqual(lo, { index: 1, name: 'lo', mtu: 65536, up: true, operState: 'UNKNOWN', linkType: 'loopback' }, 'no kind, master, link or empty alias')
  // ifi_type as `ip link` names it: link/none for a tun, [N] for one it has no name for
  t.is(linkFromWire(wire({ kind: 'link', data: { index: 4, type: 65534 }, attrs: { ifname: 'tun0' } })).linkType, 'none')
  t.is(linkFromWire(wire({ kind: 'link', data: { index: 5, type: 9999 as never }, attrs: { ifname: 'x' } })).linkType, '[9999]')
})

/** an address message's payload as the kernel sends it (the package's formatter) */
const addrWire = (msg: rt.AddressMessage): Buffer => {
  const s = new AttrStream()
  rt.formatAddressMessage(msg, s)
  return Buffer.concat(s.bufs)
}

test('addrFromWire: IFA_LOCAL preferred, lifetimes (forever omitted), IFA_FLAGS over ifa_flags', (t) => {
  const v4 = addrFromWire(addrWire({ kind: 'address', data: { family: 2, prefixlen: 24, index: 2, flags: { permanent: true } }, attrs: { local: Buffer.from([198, 18, 0, 2]), address: Buffer.from([198, 18, 0, 9]), cacheInfo: { ifaValid: 0xffffffff, ifaPrefered: 0xffffffff } } }))
  t.deepEqual(v4, { index: 2, family: 4, address: '198.18.0.2', prefix: 24, permanent: true })
  const v6 = addrFromWire(addrWire({ kind: 'address', data: { family: 10, prefixlen: 64, index: 3, flags: { permanent: true } }, attrs: { address: parseCidr('2001:db8::2').bytes, flags: { nodad: true }, cacheInfo: { ifaValid: 600, ifaPrefered: 300 } } }))
  t.deepEqual(v6, { index: 3, family: 6, address: '2001:db8::2', prefix: 64, permanent: false, validLft: 600, preferredLft: 300 })
  t.is(addrFromWire(addrWire({ kind: 'address', data: { family: 17 }, attrs: {} })), undefined)
  t.is(addrFromWire(addrWire({ kind: 'address', data: { family: 2, index: 2 }, attrs: {} })), undefined, 'no address')
  t.is(addrFromWire(Buffer.from([2, 24, 0])), undefined, 'a payload cut short')
})

test('toRouteInfo: default vs CIDR, onlink flag, names for scope/protocol; non-unicast and cloned skipped', (t) => {
  const def = toRouteInfo({ kind: 'route', data: { family: 2, dstLen: 0, table: 254, protocol: 'BOOT', scope: 'UNIVERSE', type: 'UNICAST', flags: { __unknown: 4 } }, attrs: { gateway: Buffer.from([198, 18, 0, 1]), oif: 2, table: 254 } })
  t.deepEqual(def, { family: 4, dst: 'default', table: 254, scope: 'universe', protocol: 'boot', onlink: true, gateway: '198.18.0.1', oif: 2 })
  const net = toRouteInfo({ kind: 'route', data: { family: 10, dstLen: 64, table: 254, protocol: 'KERNEL', scope: 'UNIVERSE', type: 'UNICAST', flags: {} }, attrs: { dst: parseCidr('2001:db8::').bytes, oif: 2, priority: 256 } })
  t.like(net, { family: 6, dst: '2001:db8::/64', protocol: 'kernel', metric: 256, onlink: false })
  t.is(toRouteInfo({ kind: 'route', data: { family: 2, dstLen: 32, type: 'LOCAL' }, attrs: { dst: Buffer.from([127, 0, 0, 1]) } }), undefined)
  t.is(toRouteInfo({ kind: 'route', data: { family: 10, dstLen: 128, type: 'UNICAST', flags: { cloned: true } }, attrs: {} }), undefined)
  t.is(toRouteInfo({ kind: 'route', data: { family: 2, dstLen: 24, type: 'UNICAST', protocol: 99 as never, scope: 'LINK' }, attrs: { dst: Buffer.from([198, 18, 1, 0]) } })?.protocol, '99')
})

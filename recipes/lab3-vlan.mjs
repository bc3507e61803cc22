#!/usr/bin/env node
// Lab 3, VLANs: four containers on one Open vSwitch bridge, two on VLAN 10 and two on VLAN 20.
// Same-VLAN pairs reach each other; cross-VLAN pairs don't.
import { $ } from 'zx'
import { vlan } from 'plumb'
import { expect, guest, ifnamed, lab, onTeardown, pingable, step } from './_lab.mjs'

const ovsbr = ifnamed('ovs3')
await lab('Lab 3: VLAN isolation on an OVS bridge', async () => {
  step(`an OVS bridge ${ovsbr} (userspace datapath: this kernel may lack the openvswitch module)`)
  onTeardown(() => $`ovs-vsctl --if-exists del-br ${ovsbr}`.nothrow())
  await $`ovs-vsctl --may-exist add-br ${ovsbr} -- set bridge ${ovsbr} datapath_type=netdev`
  const hosts = [
    { name: 'r10a', vid: 10, ip: '198.18.64.1' },
    { name: 'r10b', vid: 10, ip: '198.18.64.2' },
    { name: 'r20a', vid: 20, ip: '198.18.64.3' },
    { name: 'r20b', vid: 20, ip: '198.18.64.4' },
  ]
  for (const h of hosts) {
    h.ref = await guest(h.name)
    step(`plumb vlan ${h.ref} ${ovsbr} ${h.vid} ${h.ip}/24`)
    console.log((await vlan({ guest: h.ref, parent: ovsbr, vid: h.vid, ips: [`${h.ip}/24`] })).messages.join('\n'))
  }
  expect(await pingable(hosts[0].ref, hosts[1].ip), 'VLAN 10 peers reach each other')
  expect(await pingable(hosts[2].ref, hosts[3].ip), 'VLAN 20 peers reach each other')
  expect(!(await pingable(hosts[0].ref, hosts[2].ip)), 'VLAN 10 does not reach VLAN 20 (same subnet, different VLAN)')
})

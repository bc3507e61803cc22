#!/usr/bin/env node
// Lab 9, --icc=false with a link exception: three containers on one bridge. `plumb isolate`
// (bridge port isolation) keeps them from each other while each still reaches the host;
// `--allow web,db` lets that one pair talk, as Docker's --link did; --del lifts it.
import { $ } from 'zx'
import { attachVeth, isolate, ls } from 'plumb'
import { expect, guest, ifnamed, lab, onTeardown, pingable, step } from './_lab.mjs'

const bridge = ifnamed('br9')

await lab('Lab 9: --icc=false with a --link exception (plumb isolate)', async () => {
  const web = await guest('web')
  const db = await guest('db')
  const other = await guest('other')
  for (const [g, h] of [[web, 10], [db, 11], [other, 12]]) await attachVeth({ guest: g, bridge, ips: [`198.18.79.${h}/24@198.18.79.1`] })
  await $`ip addr add 198.18.79.1/24 dev ${bridge}`
  onTeardown(() => $`ip addr del 198.18.79.1/24 dev ${bridge}`.nothrow())
  expect(await pingable(web, '198.18.79.11'), 'before: web reaches db')

  step(`plumb isolate ${bridge}`)
  console.log((await isolate({ bridge })).messages.join('\n'))
  expect(!(await pingable(web, '198.18.79.11')), 'isolated: web does not reach db')
  expect(!(await pingable(other, '198.18.79.10')), 'isolated: other does not reach web')
  expect(await pingable(web, '198.18.79.1'), 'isolated: web still reaches the host (the bridge)')

  step(`plumb isolate ${bridge} --allow ${web},${db}`)
  console.log((await isolate({ bridge, allow: [`${web},${db}`] })).messages.join('\n'))
  expect(await pingable(web, '198.18.79.11'), 'the link: web reaches db')
  expect(await pingable(db, '198.18.79.10'), 'the link: db reaches web')
  expect(!(await pingable(other, '198.18.79.11')), 'only that pair: other still does not reach db')
  console.log((await ls()).isolates.filter((i) => i.bridge === bridge))

  step(`plumb isolate ${bridge} --del`)
  await isolate({ bridge, del: true })
  expect(await pingable(other, '198.18.79.10'), 'lifted: other reaches web again')
})

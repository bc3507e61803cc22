// set-ip: add (or with --del remove) addresses and routes on an interface already in the guest.

import { conflict, notFound, usageError } from '../errors.js'
import { formatMark, parseMark, validateIfname } from '../parse/index.js'
import type { GuestRef } from '../parse/index.js'
import { ipIn, journalFor, withGuest } from './context.js'
import type { CommonOptions } from './context.js'
import { validateLinkInput } from './link-input.js'
import { applyGuestConfig, formatReplacedGateways, holdsAddr, ignoreGone, planGateways } from './guest-config.js'
import { emptyResult } from './result.js'
import type { OpResult } from './result.js'
import { runTx } from './tx.js'
import { commonArgs, entry, ipTexts, persist, routeTexts } from './persist.js'
import { addSetIp, removeAddresses } from '../watch/record.js'
import { disableIpv6Key } from './ipv6.js'
import { readRecord } from './guest-record.js'

const LINK_LOCAL6 = /^fe[89ab][0-9a-f]:/i

export interface SetIpOptions extends CommonOptions {
  guest: string | GuestRef
  ifname: string
  ips?: string[]
  routes?: string[]
  /** remove the given addresses (and their @gateway default routes) and routes instead */
  del?: boolean
  replaceGateway?: boolean
}

export function validateSetIp(o: SetIpOptions) {
  const ifname = validateIfname(o.ifname, 'interface name')
  const v = validateLinkInput({ guest: o.guest, ips: o.ips ?? [], routes: o.routes ?? [] })
  if (v.ips.some((ip) => ip.kind === 'dhcp')) {
    throw usageError('set-ip takes static addresses only', `for a DHCP lease run: plumb dhcp ${typeof o.guest === 'string' ? o.guest : 'GUEST'} ${ifname}`)
  }
  if (v.statics.length === 0 && v.routes.length === 0 && v.defaults.length === 0) throw usageError('set-ip needs at least one address or --route', 'e.g. plumb set-ip web eth1 198.18.0.10/24')
  return { ...v, ifname }
}

export async function setIp(opts: SetIpOptions): Promise<OpResult> {
  const v = validateSetIp(opts)
  return withGuest(v.guest, opts, async ({ netns, guestNs }) => {
    const result = emptyResult(opts.del ? 'set-ip --del' : 'set-ip', netns.label, opts.dryRun ?? false)
    const link = await guestNs.getLink(v.ifname)
    if (!link) throw notFound(`no interface "${v.ifname}" in ${netns.label}`, `see what is there: plumb exec ${netns.label} -- ip link`)
    result.interfaces.push({ name: link.name, ...(link.mac ? { mac: link.mac } : {}), mtu: link.mtu, netns: netns.label, kind: link.kind ?? 'device' })
    const ip = (args: string): string => ipIn(netns, args)

    if (opts.del) {
      const have = await guestNs.getAddrs({ index: link.index })
      const present = v.statics.filter((s) => have.some((h) => h.address === s.address && h.prefix === s.prefix))
      const routes = await guestNs.getRoutes()
      // `--route default@GW` was taken for a default route; with --del it is a route to remove like
      // the others (an address's @GW default goes with its address, below).
      const routeDefaults = v.defaults
        .filter((d) => !v.statics.some((s) => s.family === d.family && s.gateway === d.gateway))
        .map((d) => ({ family: d.family, dst: 'default', ...(d.gateway ? { gateway: d.gateway } : {}) }))
      const removed: string[] = []
      return runTx({ ...opts, journal: journalFor('set-ip', netns) }, async (tx) => {
        for (const r of [...v.routes, ...routeDefaults]) {
          const exists = routes.some((x) => x.family === r.family && x.dst === r.dst && x.oif === link.index && (r.gateway === undefined || x.gateway === r.gateway))
          if (!exists) continue
          removed.push(`route ${r.dst}`)
          const spec = { family: r.family, dst: r.dst, oif: link.index, ...(r.gateway ? { gateway: r.gateway } : {}) }
          await tx.step(ip(`route del ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${v.ifname}`), () => guestNs.delRoute(spec), {
            line: ip(`route add ${r.dst} dev ${v.ifname}`),
            run: () => guestNs.addRoute(spec),
          })
        }
        for (const s of present) {
          if (s.gateway && routes.some((x) => x.dst === 'default' && x.gateway === s.gateway && x.oif === link.index)) {
            const spec = { family: s.family, dst: 'default', gateway: s.gateway, oif: link.index }
            await tx.step(ip(`route del default via ${s.gateway} dev ${v.ifname}`), () => ignoreGone(guestNs.delRoute(spec)), {
              line: ip(`route add default via ${s.gateway} dev ${v.ifname}`),
              run: () => guestNs.addRoute(spec),
            })
          }
          await tx.step(ip(`addr del ${s.cidr} dev ${v.ifname}`), () => guestNs.delAddr(link.index, s.cidr), {
            line: ip(`addr add ${s.cidr} dev ${v.ifname}`),
            run: () => guestNs.addAddr(link.index, s.cidr, { nodad: s.family === 6 }),
          })
        }
        // The last IPv6 address gone from an interface where set-ip turned IPv6 on: back as it was.
        const v6Left = have.filter((h) => h.family === 6 && !LINK_LOCAL6.test(h.address) && !present.some((p) => p.address === h.address && p.prefix === h.prefix))
        const switchKey = disableIpv6Key(v.ifname).key
        if (present.some((p) => p.family === 6) && v6Left.length === 0 && readRecord(netns)?.sysctl?.[switchKey]) {
          await (await import('./guest-sysctl.js')).restoreSysctlsIn(tx, netns, guestNs, result, [switchKey])
        }
        // What a replay would put back leaves the record: this set-ip's and the interface's own op's.
        await persist(tx, opts, result, [{ netns, edit: (r) => removeAddresses(r, v.ifname, ipTexts(v.statics), routeTexts(v.routes)) }])
        result.plan = tx.lines
        result.changed = tx.lines.length > 0
        result.messages.push(result.changed ? `removed from ${netns.label} ${v.ifname}: ${[...present.map((s) => s.cidr), ...removed].join(', ')}` : `nothing to remove on ${netns.label} ${v.ifname}: already absent`)
        return result
      })
    }

    const [have, routes] = await Promise.all([guestNs.getAddrs({ index: link.index }), guestNs.getRoutes()])
    const missing = v.statics.filter((w) => !holdsAddr(have, w))
    // The same address with another prefix is a different configuration in place: the kernel
    // would take both (two subnet routes for one address), which nobody means.
    for (const w of missing) {
      const other = have.find((h) => h.family === w.family && h.address === w.address)
      if (other) {
        throw conflict(
          `${netns.label} ${v.ifname} already has ${other.address}/${other.prefix}, not /${w.prefix}`,
          `remove it first (plumb set-ip ${netns.label} ${v.ifname} ${other.address}/${other.prefix} --del), then add ${w.cidr}`,
        )
      }
    }
    const gateways = await planGateways(guestNs, v.defaults, v.ifname, opts.replaceGateway ?? false, undefined, Promise.resolve(routes))
    const newRoutes = v.routes.filter((r) => !routes.some((x) => x.family === r.family && x.dst === r.dst && x.oif === link.index && x.gateway === r.gateway))
    // A route to the same destination by another way is a different configuration in place
    // (the kernel would say EEXIST half-way): found before anything is touched.
    for (const r of newRoutes) {
      const other = routes.find((x) => x.family === r.family && x.dst === r.dst)
      if (other) {
        const dev = other.oif === link.index ? v.ifname : ((await guestNs.getLinkByIndex(other.oif ?? 0))?.name ?? `#${other.oif}`)
        throw conflict(
          `${netns.label} already has a route to ${r.dst}${other.gateway ? ` via ${other.gateway}` : ''} dev ${dev}`,
          `remove it first (plumb set-ip ${netns.label} ${dev} --del --route ${r.dst}${other.gateway ? `@${other.gateway}` : ''}), then add yours`,
        )
      }
    }
    return runTx({ ...opts, journal: journalFor('set-ip', netns) }, async (tx) => {
      // An interface that was there may have IPv6 off (Docker's own eth0, say). It is turned on as
      // `plumb sysctl` would, the value found kept in the guest record: the rollback, set-ip --del
      // of its last IPv6 address and detach --all put it back.
      const ipv6Switch = disableIpv6Key(v.ifname)
      if (missing.some((m) => m.family === 6) && (await guestNs.getSysctl(ipv6Switch.path)) === '1') {
        await (await import('./guest-sysctl.js')).setSysctlsIn(tx, netns, guestNs, [{ ...ipv6Switch, value: '0' }], result)
      }
      await applyGuestConfig(tx, { netns, guestNs, ifname: v.ifname, index: link.index, ips: missing, routes: newRoutes, gateways, up: false, ipv6On: true }, result, 0)
      // detach restores a default route this replaced, when the interface is plumb's.
      const gw = formatReplacedGateways(gateways)
      const mark = parseMark(link.alias)
      if (gw && mark) {
        const updated = formatMark({ ...mark, gw: [mark.gw, gw].filter(Boolean).join(';') })
        await tx.step(ip(`link set ${v.ifname} alias '${updated}'`), () => guestNs.setLink(link.index, { alias: updated }), {
          line: ip(`link set ${v.ifname} alias '${link.alias}'`),
          run: () => guestNs.setLink(link.index, { alias: link.alias ?? '' }),
        })
      } else if (gw) {
        result.messages.push(`note: ${v.ifname} is not plumb's, so detach cannot restore the replaced default route`)
      }
      await persist(tx, opts, result, [
        { netns, edit: (r) => addSetIp(r, entry('set-ip', { ifname: v.ifname, ips: ipTexts(v.statics), routes: routeTexts(v.routes), replaceGateway: opts.replaceGateway || undefined, ...commonArgs(opts) })) },
      ])
      result.plan = tx.lines
      result.changed = tx.lines.length > 0
      const added = [...missing.map((m) => m.cidr), ...newRoutes.map((r) => `route ${r.dst}`), ...gateways.filter((g) => !g.present).map((g) => `default${g.gateway ? ` via ${g.gateway}` : ` dev ${v.ifname}`}`)]
      result.messages.push(result.changed ? `set on ${netns.label} ${v.ifname}: ${added.join(', ')}` : `already set on ${netns.label} ${v.ifname}; nothing changed`)
      return result
    })
  })
}

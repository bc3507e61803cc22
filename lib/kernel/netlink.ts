// The parts of the `netlink` package plumb uses, imported from their own modules: the package's
// index also loads nl80211, genl and WireGuard tables (~250 kB of JS), which every one-shot
// command would pay for at start-up.

export { Flags, FlagsGet, FlagsNew } from 'netlink/dist/constants.js'
export { AttrStream } from 'netlink/dist/structs.js'
export type { StreamData } from 'netlink/dist/structs.js'
export * as ifla from 'netlink/dist/rt/ifla.js'
export * as rt from 'netlink/dist/rt/structs.js'

// lib/parse: pure parsing and validation of everything a user types (no I/O, imports only ../errors.js).

export type { Family } from './addr.js'
export { parseIpSpec, parseRouteSpec } from './ip.js'
export type { IpSpec, RouteSpec } from './ip.js'
export { parseMac, seedMac } from './mac.js'
export { IFNAME_MAX_BYTES, deriveHostIfname, validateIfname } from './ifname.js'
export { MACVLAN_MODES, MTU_MAX, MTU_MIN, MTU_MIN_IPV6, checkMtuForFamilies, parseMacvlanMode, parseMtu, parseTrunks, parseVid } from './link.js'
export type { MacvlanMode } from './link.js'
export { formatGuestRef, parseGuestRef } from './guest.js'
export type { GuestRef, GuestRefOptions } from './guest.js'
export { MARK_MAX_BYTES, MARK_PREFIX, formatMark, isPlumbMark, parseMark } from './mark.js'
export type { MarkRole, OwnerMark } from './mark.js'
export { VNI_MAX, VXLAN_PORT, parseEndpointAddr, parseRemotes, parseUdpPort, parseVni } from './overlay.js'

// plumb's library API: what zx recipes and other programs import (`import { attachVeth } from 'plumb'`).
// Every op takes the same strings the CLI does, validates them first, runs as a transaction
// and resolves to a CNI-shaped OpResult (or rejects with a PlumbError carrying exitCode and hint).

export { attachVeth } from './ops/attach-veth.js'
export type { AttachVethOptions } from './ops/attach-veth.js'
export { setIp } from './ops/set-ip.js'
export type { SetIpOptions } from './ops/set-ip.js'
export { macvlan } from './ops/macvlan.js'
export type { MacvlanOptions } from './ops/macvlan.js'
export { vlan } from './ops/vlan.js'
export type { VlanOptions } from './ops/vlan.js'
export { ovsPort } from './ops/ovs-port.js'
export type { OvsPortOptions } from './ops/ovs-port.js'
export { dhcp } from './ops/dhcp.js'
export type { DhcpOptions } from './ops/dhcp.js'
export { p2pLink } from './ops/p2p-link.js'
export type { P2pLinkOptions } from './ops/p2p-link.js'
export { moveDev } from './ops/move-dev.js'
export type { MoveDevOptions } from './ops/move-dev.js'
export { vxlan } from './ops/vxlan.js'
export type { VxlanOptions } from './ops/vxlan.js'
export { detach } from './ops/detach.js'
export type { DetachOptions } from './ops/detach.js'
export { ls, formatLs } from './ops/ls.js'
export type { LsResult, LsGuest, LsInterface, LsBridge, LsOptions, LsExpose, LsMasquerade, LsIsolate, LsRecord } from './ops/ls.js'
export { execIn } from './ops/exec.js'
export type { ExecOptions, ExecResult } from './ops/exec.js'
export { waitFor, waitScript } from './ops/wait.js'
export type { WaitOptions, WaitResult } from './ops/wait.js'
export { doctor, formatDoctor } from './ops/doctor.js'
export type { DoctorReport, DoctorCheck } from './ops/doctor.js'
export { gc } from './ops/gc.js'
export type { GcOptions, GcKept } from './ops/gc.js'
export { names } from './ops/names.js'
export type { NamesOptions, NamesState } from './ops/names.js'
export { sysctl } from './ops/sysctl.js'
export type { SysctlOptions } from './ops/sysctl.js'
export { pipework } from './ops/pipework.js'
export type { PipeworkOptions, PipeworkResult } from './ops/pipework.js'
export { expose } from './ops/expose.js'
export type { ExposeOptions, PublishedMapping } from './ops/expose.js'
export { masquerade } from './ops/masquerade.js'
export type { MasqueradeOptions } from './ops/masquerade.js'
export { isolate } from './ops/isolate.js'
export type { IsolateOptions } from './ops/isolate.js'
export { replay, ReplayError } from './watch/replay.js'
export type { ReplayOptions, ReplayResult, ReplayedEntry } from './watch/replay.js'
export { watch } from './watch/watch.js'
export type { WatchOptions, WatchReplay, WatchSummary } from './watch/watch.js'
export type { ContainerRecord, RecordEntry, RecordedOp } from './watch/record.js'
export type { CommonOptions } from './ops/context.js'
export type { OpResult, ResultInterface, ResultIp, ResultRoute } from './ops/result.js'
export { deployLab, destroyLab, checkLab, inspectLab, graphLab, loadLab, parseLab, formatReport, formatInspect, CHECK_FORMATS, GRAPH_FORMATS } from './lab/index.js'
export type {
  Lab,
  LabNode,
  LabLink,
  LabEndpoint,
  LabCheck,
  LabNat,
  LabInput,
  LabResult,
  LabRunOptions,
  LabProgress,
  CheckOptions,
  CheckReport,
  CheckOutcome,
  CheckFormat,
  GraphFormat,
  InspectResult,
  InspectNode,
  InspectNat,
} from './lab/index.js'
export { configure } from './config.js'
export type { PlumbConfig } from './config.js'
export { runCni, cniMain, portSpec } from './cni/plugin.js'
export type { CniRequest, CniIo, ExposeFn } from './cni/plugin.js'
export { CniError, CNI_CODES } from './cni/errors.js'
export { SUPPORTED_VERSIONS as CNI_VERSIONS, parseNetConf, parseEnv as parseCniEnv } from './cni/config.js'
export type { CniEnv, CniVersion, NetConf, OpConfig as CniOpConfig, PortMapping } from './cni/config.js'
export type { CniResult, CniInterface, CniIp, CniRoute, CniDns } from './cni/result.js'
export { cniInstall, sampleConflist } from './cni/install.js'
export type { CniInstallOptions } from './cni/install.js'
export { PlumbError, EXIT_CODES } from './errors.js'
export type { ErrorCode } from './errors.js'
export { parseIpSpec, parseGuestRef, parseMac, parsePipework, pipeworkMac, parsePortSpec } from './parse/index.js'
export type { GuestRef, HostEntry, IpSpec, PipeworkCommand, ResolvWant, PortMapping as PortSpecMapping } from './parse/index.js'

// A lab's topology drawn from the file: nodes, bridges and links, each link labelled with its
// interface names and addresses. Mermaid and DOT are text (pure); SVG is DOT through Graphviz's
// `dot` (exit 5 naming it when it is not installed).

import { PlumbError } from '../errors.js'
import { run } from '../proc.js'
import type { Lab, LabEndpoint, LabNode } from './types.js'

export const GRAPH_FORMATS = ['mermaid', 'dot', 'svg'] as const
export type GraphFormat = (typeof GRAPH_FORMATS)[number]

interface Edge {
  from: string
  to: string
  /** the text at each end: `eth1 198.18.1.10/24` */
  fromLabel: string
  toLabel: string
  /** vlan 10, mtu 1400, macvlan bridge, ... */
  note: string
}

interface Vertex {
  id: string
  label: string
  shape: 'container' | 'netns' | 'bridge' | 'ovs' | 'host' | 'nic' | 'remote'
}

const endText = (e: LabEndpoint): string => [e.ifname, ...e.ips].join(' ')

/** The drawing's vertices and edges, shared by every format. */
function shapeOf(lab: Lab): { vertices: Vertex[]; edges: Edge[] } {
  const id = (name: string): string => `n_${name.replace(/[^A-Za-z0-9_]/g, '_')}`
  const vertices: Vertex[] = lab.nodes.map((n: LabNode) => ({
    id: id(n.name),
    label: n.kind === 'linux' ? `${n.name}\n${n.existing ? `container ${n.runtime}` : (n.image ?? '')}` : n.kind === 'netns' ? `${n.name}\nnetns` : n.ips.length ? `${n.name}\n${n.ips.join(' ')}` : n.name,
    shape: n.kind === 'linux' ? 'container' : n.kind === 'netns' ? 'netns' : n.kind === 'bridge' ? 'bridge' : 'ovs',
  }))
  const edges: Edge[] = []
  const extra = (id: string, label: string, shape: Vertex['shape']): string => {
    if (!vertices.some((v) => v.id === id)) vertices.push({ id, label, shape })
    return id
  }
  for (const l of lab.links) {
    const mtu = l.mtu !== undefined ? `mtu ${l.mtu}` : ''
    switch (l.kind) {
      case 'macvlan':
        edges.push({ from: id(l.a.node), to: extra(`nic_${l.parent.replace(/[^A-Za-z0-9_]/g, '_')}`, `${l.parent}\nhost NIC`, 'nic'), fromLabel: endText(l.a), toLabel: '', note: [`macvlan ${l.mode}`, mtu].filter(Boolean).join(', ') })
        break
      case 'vxlan':
        for (const r of l.remote) edges.push({ from: id(l.bridge), to: extra(`remote_${r.replace(/[^A-Za-z0-9_]/g, '_')}`, `${r}\nremote host`, 'remote'), fromLabel: '', toLabel: '', note: [`vxlan ${l.vni}`, mtu].filter(Boolean).join(', ') })
        break
      default: {
        const to = l.kind === 'host' ? extra('host', 'host', 'host') : id(l.b.node)
        const note = [l.kind === 'ovs' && l.b.vlan !== undefined ? `vlan ${l.b.vlan}` : '', l.kind === 'ovs' && l.b.trunks ? `trunks ${l.b.trunks.join(',')}` : '', mtu].filter(Boolean).join(', ')
        edges.push({ from: id(l.a.node), to, fromLabel: endText(l.a), toLabel: endText(l.b), note })
      }
    }
  }
  return { vertices, edges }
}

const mmText = (s: string): string => `"${s.replace(/"/g, '#quot;').replace(/\n/g, '<br>')}"`

export function toMermaid(lab: Lab): string {
  const { vertices, edges } = shapeOf(lab)
  const out = ['graph LR', `  %% lab ${lab.name} (${lab.file})`]
  for (const v of vertices) {
    const t = mmText(v.label)
    out.push(`  ${v.id}${v.shape === 'bridge' || v.shape === 'ovs' ? `{{${t}}}` : v.shape === 'host' ? `((${t}))` : v.shape === 'netns' ? `([${t}])` : v.shape === 'nic' || v.shape === 'remote' ? `>${t}]` : `[${t}]`}`)
  }
  for (const e of edges) {
    const label = [e.fromLabel, e.note && `(${e.note})`, e.toLabel].filter(Boolean).join(' — ')
    out.push(`  ${e.from} ---${label ? `|${mmText(label)}|` : ''} ${e.to}`)
  }
  return `${out.join('\n')}\n`
}

const dotText = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`

export function toDot(lab: Lab): string {
  const { vertices, edges } = shapeOf(lab)
  const shape: Record<Vertex['shape'], string> = { container: 'box', netns: 'box, style=rounded', bridge: 'hexagon', ovs: 'hexagon, style=filled, fillcolor="#eeeeff"', host: 'doublecircle', nic: 'cds', remote: 'cloud' }
  const out = [`graph ${dotText(lab.name)} {`, '  rankdir=LR;', '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
  for (const v of vertices) out.push(`  ${v.id} [label=${dotText(v.label)}, shape=${shape[v.shape]}];`)
  for (const e of edges) {
    const attrs = [e.fromLabel && `taillabel=${dotText(e.fromLabel)}`, e.toLabel && `headlabel=${dotText(e.toLabel)}`, e.note && `label=${dotText(e.note)}`].filter(Boolean)
    out.push(`  ${e.from} -- ${e.to}${attrs.length ? ` [${attrs.join(', ')}]` : ''};`)
  }
  out.push('}')
  return `${out.join('\n')}\n`
}

/** SVG through Graphviz's dot. */
export async function toSvg(lab: Lab): Promise<string> {
  let r
  try {
    r = await run('dot', ['-Tsvg'], { input: toDot(lab), timeout: 30_000 })
  } catch (err) {
    if (err instanceof PlumbError && err.code === 'UNSUPPORTED') {
      throw new PlumbError('UNSUPPORTED', "drawing SVG needs Graphviz's dot, which is not installed here", { hint: 'apt-get install graphviz (or use --format mermaid or dot)', cause: err })
    }
    throw err
  }
  if (r.exitCode !== 0) throw new PlumbError('FAILED', `dot -Tsvg failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`)
  return r.stdout
}

export async function drawLab(lab: Lab, format: GraphFormat = 'mermaid'): Promise<string> {
  if (format === 'mermaid') return toMermaid(lab)
  if (format === 'dot') return toDot(lab)
  return toSvg(lab)
}

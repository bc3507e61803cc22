// A check run as the four formats LAB.md names: text (a line per check, then the score), TAP
// version 14, JUnit XML, JSON. Pure.

import type { CheckReport } from './check.js'

export const CHECK_FORMATS = ['text', 'tap', 'junit', 'json'] as const
export type CheckFormat = (typeof CHECK_FORMATS)[number]

const pts = (n: number): string => (n === 1 ? '' : ` (${n} points)`)

export function formatText(r: CheckReport): string {
  const lines = r.checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.name}${pts(c.points)}${c.ok ? '' : `: ${c.detail}`}`)
  lines.push(`score ${r.score}/${r.total}`)
  return `${lines.join('\n')}\n`
}

/** A TAP description may not hold `#` unescaped (it starts a directive) nor a newline. */
const tapName = (s: string): string => s.replace(/\\/g, '\\\\').replace(/#/g, '\\#').replace(/\s*\n\s*/g, ' ')
/** A YAML double-quoted scalar. */
const yamlStr = (s: string): string => JSON.stringify(s)

export function formatTap(r: CheckReport): string {
  const out = ['TAP version 14', `1..${r.checks.length}`]
  r.checks.forEach((c, i) => {
    out.push(`${c.ok ? 'ok' : 'not ok'} ${i + 1} - ${tapName(c.name)}`)
    // TAP 14 YAML diagnostics: indented two spaces, between --- and ...
    out.push('  ---', `  detail: ${yamlStr(c.detail)}`, `  points: ${c.points}`, `  at: ${yamlStr(c.at)}`, `  duration_ms: ${Math.round(c.ms)}`, '  ...')
  })
  out.push(`# score ${r.score}/${r.total}`)
  return `${out.join('\n')}\n`
}

const xml = (s: string): string =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    // XML 1.0 allows no control characters but tab, newline and carriage return
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')

export function formatJunit(r: CheckReport): string {
  const failures = r.checks.filter((c) => !c.ok).length
  const secs = (ms: number): string => (ms / 1000).toFixed(3)
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="plumb lab ${xml(r.lab)}" tests="${r.checks.length}" failures="${failures}" errors="0" time="${secs(r.ms)}">`,
    `  <testsuite name="${xml(r.lab)}" tests="${r.checks.length}" failures="${failures}" errors="0" skipped="0" time="${secs(r.ms)}">`,
    '    <properties>',
    `      <property name="file" value="${xml(r.file)}"/>`,
    `      <property name="score" value="${r.score}"/>`,
    `      <property name="total" value="${r.total}"/>`,
    '    </properties>',
  ]
  for (const c of r.checks) {
    const head = `    <testcase classname="${xml(r.lab)}" name="${xml(c.name)}" time="${secs(c.ms)}"`
    if (c.ok) out.push(`${head}/>`)
    else out.push(`${head}>`, `      <failure message="${xml(c.detail)}" type="${c.kind}">${xml(`${c.at}: ${c.detail} (${c.points} point${c.points === 1 ? '' : 's'})`)}</failure>`, '    </testcase>')
  }
  out.push('  </testsuite>', '</testsuites>')
  return `${out.join('\n')}\n`
}

export function formatJson(r: CheckReport): string {
  return `${JSON.stringify({ lab: r.lab, checks: r.checks.map((c) => ({ name: c.name, ok: c.ok, points: c.points, detail: c.detail, at: c.at })), score: r.score, total: r.total }, null, 2)}\n`
}

export function formatReport(r: CheckReport, format: CheckFormat): string {
  switch (format) {
    case 'text':
      return formatText(r)
    case 'tap':
      return formatTap(r)
    case 'junit':
      return formatJunit(r)
    case 'json':
      return formatJson(r)
  }
}

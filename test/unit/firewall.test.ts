// The firewall read's one spawn: both families' tables (iptables-save) from one sh, split per
// binary by the exit-status lines; run against fake iptables-save/ip6tables-save (only the argv
// and output matter). Run as a user the cache is not kept (/run/plumb), so each call spawns.

import test from 'ava'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bridgeFirewall, saveTables } from '../../lib/firewall/index.js'
import { PlumbError } from '../../lib/errors.js'

function fakeBin(dir: string, name: string, script: string): void {
  writeFileSync(join(dir, name), `#!/bin/sh\n${script}\n`)
  chmodSync(join(dir, name), 0o755)
}

test.serial('saveTables: one sh runs both -save programs; each family\'s tables are split off by its status line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-fw-'))
  const oldPath = process.env.PATH
  t.teardown(() => {
    process.env.PATH = oldPath
    rmSync(dir, { recursive: true, force: true })
  })
  fakeBin(dir, 'iptables-save', `echo "run $*" >> ${dir}/argv4\nprintf -- '*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD DROP [0:0]\\n:DOCKER-USER - [0:0]\\n-A DOCKER-USER -j RETURN\\nCOMMIT\\n'`)
  fakeBin(dir, 'ip6tables-save', `echo "run $*" >> ${dir}/argv6\necho 'ip6tables-save v1.8.9 (nf_tables): table filter missing' >&2\nexit 3`)
  process.env.PATH = `${dir}:${oldPath}`

  const both = await saveTables(['iptables', 'ip6tables'])
  t.deepEqual([...both.keys()], ['iptables'], 'a family whose table is missing (exit 3) gives no table')
  t.deepEqual([...(both.get('iptables')?.filter?.chains ?? [])], [['INPUT', 'ACCEPT'], ['FORWARD', 'DROP'], ['DOCKER-USER', '-']])
  t.is(both.get('iptables')?.filter?.rules[0]?.chain, 'DOCKER-USER')
  // (and -V, which asks a binary that is not xtables-nft-multi its backend before its tables are kept)
  t.true(readFileSync(join(dir, 'argv4'), 'utf8').split('\n').includes('run '))
  t.true(readFileSync(join(dir, 'argv6'), 'utf8').split('\n').includes('run '))

  t.deepEqual([...(await saveTables([])).keys()], [], 'nothing asked, nothing spawned')
  fakeBin(dir, 'ip6tables-save', `printf -- '*filter\\n:FORWARD ACCEPT [0:0]\\nCOMMIT\\n'`)
  const six = await saveTables(['ip6tables'])
  t.is(six.get('ip6tables')?.filter?.chains.get('FORWARD'), 'ACCEPT')
  t.false(six.has('iptables'))
})

test.serial('saveTables: a table that could not be read (no permission, ...) is an error, never "no rules"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-fw-'))
  const oldPath = process.env.PATH
  t.teardown(() => {
    process.env.PATH = oldPath
    rmSync(dir, { recursive: true, force: true })
  })
  fakeBin(dir, 'iptables-save', `echo 'iptables-save: Permission denied' >&2\nexit 4`)
  fakeBin(dir, 'ip6tables-save', `printf -- '*filter\\n:FORWARD ACCEPT [0:0]\\nCOMMIT\\n'`)
  process.env.PATH = `${dir}:${oldPath}`
  const err = await t.throwsAsync(saveTables(['iptables', 'ip6tables']), { instanceOf: PlumbError })
  t.is(err?.code, 'FAILED')
  t.regex(err?.message ?? '', /failed to read the firewall: `iptables-save` exited 4/)
  const plan = await t.throwsAsync(bridgeFirewall('pt-br'), { instanceOf: PlumbError }, 'an attach then fails and rolls back instead of skipping the ACCEPT rule')
  t.regex(plan?.message ?? '', /exited 4/)
})


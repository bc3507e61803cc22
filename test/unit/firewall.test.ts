// The firewall check's one spawn: both families' filter tables from one sh, split per binary by
// the exit-status lines; run against fake iptables/ip6tables (only the argv and output matter).

import test from 'ava'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bridgeFirewall, dumpTables } from '../../lib/firewall/index.js'
import { PlumbError } from '../../lib/errors.js'

function fakeBin(dir: string, name: string, script: string): void {
  writeFileSync(join(dir, name), `#!/bin/sh\n${script}\n`)
  chmodSync(join(dir, name), 0o755)
}

test.serial('dumpTables: one sh runs both binaries with -w -S; each table is split off by its status line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-fw-'))
  const oldPath = process.env.PATH
  t.teardown(() => {
    process.env.PATH = oldPath
    rmSync(dir, { recursive: true, force: true })
  })
  fakeBin(dir, 'iptables', `echo "$*" >> ${dir}/argv4\nprintf -- '-P INPUT ACCEPT\\n-P FORWARD DROP\\n-N DOCKER-USER\\n-A DOCKER-USER -j RETURN\\n'`)
  fakeBin(dir, 'ip6tables', `echo "$*" >> ${dir}/argv6\necho 'ip6tables v1.8.9 (nf_tables): table filter missing' >&2\nexit 3`)
  process.env.PATH = `${dir}:${oldPath}`

  const both = await dumpTables(['iptables', 'ip6tables'])
  t.deepEqual([...both.keys()], ['iptables'], 'a family whose table is missing (exit 3) gives no table')
  t.is(both.get('iptables'), '-P INPUT ACCEPT\n-P FORWARD DROP\n-N DOCKER-USER\n-A DOCKER-USER -j RETURN')
  // (and -V, which asks a binary that is not xtables-nft-multi its backend before its table is kept)
  t.true(readFileSync(join(dir, 'argv4'), 'utf8').split('\n').includes('-w -S'))
  t.true(readFileSync(join(dir, 'argv6'), 'utf8').split('\n').includes('-w -S'))

  t.deepEqual([...(await dumpTables([])).keys()], [], 'nothing asked, nothing spawned')
  fakeBin(dir, 'ip6tables', `printf -- '-P FORWARD ACCEPT\\n'`)
  const six = await dumpTables(['ip6tables'])
  t.is(six.get('ip6tables'), '-P FORWARD ACCEPT')
  t.false(six.has('iptables'))
})

test.serial('dumpTables: a table that could not be read (the lock, no permission) is an error, never "no rules"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-fw-'))
  const oldPath = process.env.PATH
  t.teardown(() => {
    process.env.PATH = oldPath
    rmSync(dir, { recursive: true, force: true })
  })
  fakeBin(dir, 'iptables', `echo 'Another app is currently holding the xtables lock' >&2\nexit 4`)
  fakeBin(dir, 'ip6tables', `printf -- '-P FORWARD ACCEPT\\n'`)
  process.env.PATH = `${dir}:${oldPath}`
  const err = await t.throwsAsync(dumpTables(['iptables', 'ip6tables']), { instanceOf: PlumbError })
  t.is(err?.code, 'FAILED')
  t.regex(err?.message ?? '', /failed to read the firewall: `iptables -w -S` exited 4/)
  const plan = await t.throwsAsync(bridgeFirewall('pt-br'), { instanceOf: PlumbError }, 'an attach then fails and rolls back instead of skipping the ACCEPT rule')
  t.regex(plan?.message ?? '', /exited 4/)
})


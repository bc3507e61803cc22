// lib/proc.ts's tag of the programs an op's step runs: what a recovery of a killed op waits for.

import test from 'ava'
import { execa } from 'execa'
import { CHILD_OF, processesChildOf, run } from '../../lib/proc.js'
import { waitFor } from '../helpers/index.js'

test('a program run for a step, and the programs it starts, carry the tag; one run without it does not', async (t) => {
  const show = `echo "$${CHILD_OF}"; sh -c 'echo "$${CHILD_OF}"'`
  t.is((await run('sh', ['-c', show], { childOf: '12:34' })).stdout, '12:34\n12:34\n')
  t.is((await run('sh', ['-c', show], { childOf: '12:34', extendEnv: false, env: { A: '1' } })).stdout, '12:34\n12:34\n', 'with only the environment given, too')
  t.is((await run('sh', ['-c', show])).stdout, '\n\n')
})

test("processesChildOf: the live processes carrying exactly that tag, a program's own children too; none once they exit", async (t) => {
  const tag = `${process.pid}:${Date.now()}`
  // sh forks the sleep (no exec: a second command follows), so both carry the tag
  const tagged = execa('sh', ['-c', 'sleep 30; true'], { env: { [CHILD_OF]: tag }, reject: false })
  const longer = execa('sleep', ['30'], { env: { [CHILD_OF]: `${tag}0` }, reject: false })
  const other = execa('sleep', ['30'], { reject: false })
  t.teardown(() => {
    for (const p of [tagged, longer, other]) p.kill('SIGKILL')
  })
  await waitFor(() => processesChildOf(tag).length === 2, { what: 'sh and its sleep to run' })
  const found = processesChildOf(tag)
  t.true(found.includes(tagged.pid!), 'the program itself')
  t.false(found.includes(longer.pid!), 'not a tag it is only the start of')
  t.false(found.includes(other.pid!), 'not a program without it')
  t.deepEqual(processesChildOf(`${tag}0`), [longer.pid!])
  for (const pid of found) process.kill(pid, 'SIGKILL')
  await waitFor(() => processesChildOf(tag).length === 0, { what: 'them to be gone' })
  t.pass()
})

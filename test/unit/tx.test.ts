// The transaction every op runs in: order, reverse undo, the original error kept, dry-run.

import test from 'ava'
import { PlumbError } from '../../lib/errors.js'
import { Tx, runTx } from '../../lib/ops/tx.js'
import { readJournal, selfIdentity, writerTag } from '../../lib/ops/journal.js'
import type { Intent } from '../../lib/ops/journal.js'

test('steps run in order and return their results; commit keeps the work', async (t) => {
  const log: string[] = []
  const r = await runTx({}, async (tx) => {
    const a = await tx.step('step a', async () => (log.push('a'), 1), { line: 'undo a', run: async () => void log.push('undo a') })
    const b = await tx.step('step b', async () => (log.push('b'), a + 1), { line: 'undo b', run: async () => void log.push('undo b') })
    t.deepEqual(tx.lines, ['step a', 'step b'])
    return b
  })
  t.is(r, 2)
  t.deepEqual(log, ['a', 'b'])
})

test('a failure undoes the done steps in reverse, keeps the original error and reports the rollback', async (t) => {
  const log: string[] = []
  const err = await t.throwsAsync(
    runTx({}, async (tx) => {
      await tx.step('one', async () => void log.push('one'), { line: 'undo one', run: async () => void log.push('undo one') })
      await tx.step('two', async () => 'r2', { line: 'undo two', run: async (r) => void log.push(`undo two(${r})`) })
      await tx.step('no undo', async () => void log.push('three'))
      await tx.step('four', async () => {
        throw new PlumbError('CONFLICT', 'failed to add link "x": EEXIST', { hint: 'h' })
      }, { line: 'undo four', run: async () => void log.push('undo four') })
    }),
  )
  t.true(err instanceof PlumbError)
  const perr = err as PlumbError
  t.is(perr.code, 'CONFLICT')
  t.is(perr.exitCode, 4)
  t.is(perr.message, 'failed to add link "x": EEXIST')
  t.is(perr.hint, 'h')
  // the failed step's own undo is never run: it did not succeed
  t.deepEqual(log, ['one', 'three', 'undo two(r2)', 'undo one'])
  t.deepEqual(perr.rolledBack, ['undo two', 'undo one'])
})

test('a plain Error becomes FAILED (exit 1) with its cause; a failing undo is reported, the rest still run', async (t) => {
  const log: string[] = []
  const boom = new Error('ENETUNREACH')
  const err = (await t.throwsAsync(
    runTx({}, async (tx) => {
      await tx.step('a', async () => undefined, { line: 'undo a', run: async () => void log.push('undo a') })
      await tx.step('b', async () => undefined, {
        line: 'undo b',
        run: async () => {
          throw new Error('gone')
        },
      })
      tx.onRollback('undo c', async () => void log.push('undo c'))
      throw boom
    }),
  )) as PlumbError
  t.is(err.code, 'FAILED')
  t.is(err.exitCode, 1)
  t.is(err.message, 'ENETUNREACH')
  t.is(err.cause, boom)
  t.deepEqual(log, ['undo c', 'undo a'])
  t.deepEqual(err.rolledBack, ['undo c', 'undo b  (FAILED: gone)', 'undo a'])
})

test('a usage error found after steps ran is exit 1 (rolled back), not 2 (nothing touched); before any step it stays 2', async (t) => {
  const late = (await t.throwsAsync(
    runTx({}, async (tx) => {
      await tx.step('ip link add x', async () => undefined, { line: 'ip link del x', run: async () => undefined })
      throw new PlumbError('USAGE', 'failed to add route: ENETUNREACH', { hint: 'gateway not on a connected subnet' })
    }),
  )) as PlumbError
  t.is(late.exitCode, 1)
  t.is(late.message, 'failed to add route: ENETUNREACH')
  t.is(late.hint, 'gateway not on a connected subnet')
  t.deepEqual(late.rolledBack, ['ip link del x'])
})

test('a failure before any step has no rolledBack', async (t) => {
  const err = (await t.throwsAsync(runTx({}, async () => Promise.reject(new PlumbError('USAGE', 'bad'))))) as PlumbError
  t.is(err.exitCode, 2)
  t.is(err.rolledBack, undefined)
})

test('dry-run records the lines and runs nothing, not even rollback registrations', async (t) => {
  let ran = 0
  const tx = new Tx({ dryRun: true })
  const r = await tx.step('ip link add x', async () => ++ran, { line: 'ip link del x', run: async () => ++ran })
  t.is(r as unknown, undefined)
  tx.onRollback('x', async () => ++ran)
  await tx.step('ip addr add', async () => ++ran)
  t.deepEqual(tx.lines, ['ip link add x', 'ip addr add'])
  t.deepEqual(await tx.rollback(), [])
  t.is(ran, 0)
})

test('verbose log gets each step with its time, and rollback lines', async (t) => {
  const lines: string[] = []
  await t.throwsAsync(
    runTx({ log: (l) => lines.push(l) }, async (tx) => {
      await tx.step('ip link add x', async () => undefined, { line: 'ip link del x', run: async () => undefined })
      throw new Error('later')
    }),
  )
  t.regex(lines[0]!, /^ip link add x {2}\(\d+\.\d ms\)$/)
  t.is(lines[1], 'rollback: ip link del x')
})

test('commit forgets the inverses', async (t) => {
  let undone = 0
  const tx = new Tx()
  await tx.step('a', async () => undefined, { line: 'undo', run: async () => ++undone })
  tx.commit()
  t.deepEqual(await tx.rollback(), [])
  t.is(undone, 0)
})

test('batch: every step starts at once and in order, before any is awaited; results feed the undos', async (t) => {
  const started: string[] = []
  const undone: string[] = []
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const tx = new Tx()
  const done = tx.batch([
    { line: 'a', run: async () => (started.push('a'), await gate, 'ra'), undo: { line: 'undo a', run: async (r) => void undone.push(`a(${String(r)})`) } },
    { line: 'b', run: async () => (started.push('b'), 'rb') },
    { line: 'c', run: async () => (started.push('c'), 'rc'), undo: { line: 'undo c', run: async (r) => void undone.push(`c(${String(r)})`) } },
  ])
  // all three were called although the first has not finished: no round trip between them
  t.deepEqual(started, ['a', 'b', 'c'])
  release()
  await done
  t.deepEqual(tx.lines, ['a', 'b', 'c'])
  t.deepEqual(await tx.rollback(), ['undo c', 'undo a'])
  t.deepEqual(undone, ['c(rc)', 'a(ra)'])
})

test('batch: a failure keeps the undos of the steps that succeeded, before and after it, and throws the first failure', async (t) => {
  const log: string[] = []
  const err = await t.throwsAsync(
    runTx({}, async (tx) => {
      await tx.step('before', async () => undefined, { line: 'undo before', run: async () => void log.push('undo before') })
      await tx.batch([
        { line: 'one', run: async () => 1, undo: { line: 'undo one', run: async () => void log.push('undo one') } },
        { line: 'two', run: async () => Promise.reject(new PlumbError('CONFLICT', 'two failed')), undo: { line: 'undo two', run: async () => void log.push('undo two') } },
        { line: 'three', run: async () => 3, undo: { line: 'undo three', run: async () => void log.push('undo three') } },
        { line: 'four', run: async () => Promise.reject(new Error('four failed too')) },
      ])
    }),
  )
  t.is((err as PlumbError).message, 'two failed')
  t.is((err as PlumbError).code, 'CONFLICT')
  // three ran (the kernel had it), so it is undone too; two's own undo never runs
  t.deepEqual(log, ['undo three', 'undo one', 'undo before'])
  t.deepEqual((err as PlumbError).rolledBack, ['undo three', 'undo one', 'undo before'])
})

test('batch in dry-run records the lines and runs nothing', async (t) => {
  let ran = 0
  const tx = new Tx({ dryRun: true })
  await tx.batch([
    { line: 'x', run: async () => ++ran },
    { line: 'y', run: async () => ++ran, undo: { line: 'undo y', run: async () => ++ran } },
  ])
  t.deepEqual(tx.lines, ['x', 'y'])
  t.deepEqual(await tx.rollback(), [])
  t.is(ran, 0)
})

test('childOf: the tag of this writer, and the entry says once, before the first program runs, that the op runs programs', async (t) => {
  if (process.getuid?.() !== 0) return t.pass('the journal is root\'s')
  const mine = (): Intent[][] => readJournal().entries.filter((s) => s.entry.pid === process.pid && s.entry.op === 'pt-childof').map((s) => s.entry.intents)
  await runTx({ journal: { op: 'pt-childof', guests: [] } }, async (tx) => {
    t.is(tx.childOf(), writerTag(selfIdentity()))
    tx.childOf()
    t.deepEqual(mine(), [[{ t: 'programs' }]])
  })
  t.deepEqual(mine(), [], 'the entry goes with the commit')
  await runTx({ dryRun: true, journal: { op: 'pt-childof', guests: [] } }, async (tx) => {
    tx.childOf()
    t.deepEqual(mine(), [], 'a dry run writes none')
  })
})

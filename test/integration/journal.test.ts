// The intent journal's recovery rules, with entries written by hand the way a killed plumb
// leaves them: only a dead writer's entries are undone, only in the writer's own host netns,
// only what still looks like what the op made; the op on a guest recovers that guest's entries,
// gc all of them; what cannot be decided keeps its entry.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { execa } from 'execa'
import { PLUMB_BIN, cmdlineOf, hasBinary, holdGcLock, ipJson, isRoot, makeNetns, sh, uniq, waitFor } from '../helpers/index.js'
import { labFixture } from '../e2e/lab-fixture.js'
import { netnsAt } from '../../lib/guest/nsfile.js'
import { finalEntry, readJournal, writerTag } from '../../lib/ops/journal.js'
import { CHILD_OF, processesChildOf } from '../../lib/proc.js'
import { firewallRules, fixture, forwardDropActive, guestLinks, plumb } from './ops-fixture.js'
import { plumbIn } from './links-fixture.js'

const rootTest = isRoot ? test : test.skip
const DIR = '/run/plumb/journal'

const nsId = (path: string): { dev: number; ino: number } => {
  const st = statSync(path)
  return { dev: st.dev, ino: st.ino }
}

/** A pid that has exited: its entries are a killed plumb's. */
async function deadPid(): Promise<number> {
  const p = execa('true')
  const pid = p.pid!
  await p
  return pid
}

function startOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
}

/** Write an entry as plumb would, removed in teardown whatever happens. */
function writeEntry(t: ExecutionContext, entry: Record<string, unknown>): string {
  mkdirSync(DIR, { recursive: true })
  const file = `${DIR}/${uniq()}.json`
  // with whatever a recoverer renamed it to (`.recovering.PID`)
  t.teardown(() => {
    for (const f of readdirSync(DIR)) if (`${DIR}/${f}`.startsWith(file)) rmSync(`${DIR}/${f}`, { force: true })
  })
  writeFileSync(file, JSON.stringify({ v: 1, at: Date.now(), op: 'attach-veth', hostNs: nsId('/proc/self/ns/net'), ...entry }))
  return file
}

/** An unmarked veth inside `ns` whose peer is `${name}h` there too: what a kill before the mark leaves. */
async function unmarkedVeth(ns: string, name: string, alias?: string): Promise<void> {
  await sh('ip', ['-n', ns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}h`])
  if (alias) await sh('ip', ['-n', ns, 'link', 'set', name, 'alias', alias])
}

const linkIn = (ns: string, name: string): Promise<boolean> => guestLinks(ns).then((m) => m.has(name))
const where = (ns: string) => ({ ns: 'guest', path: `/run/netns/${ns}`, ...nsId(`/run/netns/${ns}`) })

/** A guest with a killed run's entry (its unmarked eth1) that a recoverer `holder` has taken: renamed to `.recovering.PID`. */
async function heldGuest(t: ExecutionContext, holder: number): Promise<{ ns: string; file: string; held: string }> {
  const ns = await makeNetns(t)
  await unmarkedVeth(ns, 'eth1')
  const file = writeEntry(t, { pid: await deadPid(), start: 1, guests: [nsId(`/run/netns/${ns}`)], intents: [{ t: 'link', where: where(ns), name: 'eth1', kind: 'veth' }] })
  const held = `${file}.recovering.${holder}`
  renameSync(file, held)
  return { ns, file, held }
}

rootTest('gc undoes the entry of a dead plumb (and removes its half-written temporary file); a live writer\'s entry is left alone', async (t) => {
  await holdGcLock(t)
  const ns = await makeNetns(t)
  await unmarkedVeth(ns, 'eth1')
  await unmarkedVeth(ns, 'eth2')
  const dead = writeEntry(t, { pid: await deadPid(), start: 1, guests: [nsId(`/run/netns/${ns}`)], intents: [{ t: 'link', where: where(ns), name: 'eth1', kind: 'veth' }] })
  const sleeper = execa('sleep', ['60'], { reject: false })
  t.teardown(() => void sleeper.kill('SIGKILL'))
  // its start time is read once it runs sleep, not while it is still node's fork
  await waitFor(() => cmdlineOf(sleeper.pid!) === 'sleep 60', { what: 'the sleeper to exec' })
  const live = writeEntry(t, { pid: sleeper.pid!, start: startOf(sleeper.pid!), guests: [nsId(`/run/netns/${ns}`)], intents: [{ t: 'link', where: where(ns), name: 'eth2', kind: 'veth' }] })
  const dead0 = await deadPid()
  const tmp = `${DIR}/${dead0}-1.json.${dead0}.tmp`
  writeFileSync(tmp, '{"v":1,')
  t.teardown(() => rmSync(tmp, { force: true }))

  const dry = await plumb('gc', '--dry-run')
  t.is(dry.exitCode, 0, dry.stderr)
  t.true(await linkIn(ns, 'eth1'), 'a dry run changes nothing')

  const r = await plumb('gc', '--json')
  t.is(r.exitCode, 0, r.stderr)
  t.false(await linkIn(ns, 'eth1'), "the dead run's unmarked veth is gone")
  t.false(existsSync(dead), 'its entry is gone')
  t.false(existsSync(tmp), 'the half-written entry is gone')
  t.true(await linkIn(ns, 'eth2'), "a live run's link stays")
  t.true(existsSync(live), "a live run's entry stays")
  t.true((r.json.plan as string[]).some((l) => l.includes('link del eth1')), 'gc says what it undid')
})

rootTest("gc lets a dead run's programs finish before undoing their work, found by the tag they carry (no pid in the entry: the kill may come between the spawn and the write)", async (t) => {
  await holdGcLock(t)
  const ns = await makeNetns(t)
  const dead = await deadPid()
  const file = writeEntry(t, { pid: dead, start: 1, guests: [nsId(`/run/netns/${ns}`)], intents: [{ t: 'link', where: where(ns), name: 'eth1', kind: 'veth' }, { t: 'programs' }] })
  const tag = writerTag({ pid: dead, start: 1 })
  // what a step's program does when held up (an iptables rule behind another's firewall lock): its work lands late
  const late = execa('sh', ['-c', `sleep 1; ip -n ${ns} link add eth1 type veth peer name eth1h`], { env: { [CHILD_OF]: tag }, reject: false })
  t.teardown(() => void late.kill('SIGKILL'))
  await waitFor(() => processesChildOf(tag).length > 0, { what: 'the program to run' })
  const r = await plumb('gc')
  t.is(r.exitCode, 0, r.stderr)
  t.is((await late).exitCode, 0, 'the program made its link (then gc undid it)')
  t.false(await linkIn(ns, 'eth1'), 'the link the program made late is gone')
  t.false(await linkIn(ns, 'eth1h'))
  t.false(existsSync(file), 'the entry is finished')
})

rootTest('an op on a guest first finishes the interrupted runs on that guest, and only those', async (t) => {
  // a gc meanwhile (this file's, another worker's) would finish guest a's run too: none runs while this does
  await holdGcLock(t)
  const a = await makeNetns(t)
  const b = await makeNetns(t)
  await unmarkedVeth(a, 'eth1')
  await unmarkedVeth(b, 'eth1')
  const dead = await deadPid()
  const entryA = writeEntry(t, { pid: dead, start: 1, guests: [nsId(`/run/netns/${a}`)], intents: [{ t: 'link', where: where(a), name: 'eth1', kind: 'veth' }] })
  const entryB = writeEntry(t, { pid: dead, start: 1, guests: [nsId(`/run/netns/${b}`)], intents: [{ t: 'link', where: where(b), name: 'eth1', kind: 'veth' }] })

  const r = await plumb('detach', `netns:${b}`, '--all')
  t.is(r.exitCode, 0, r.stderr)
  t.regex(r.stdout, /finished an interrupted plumb first/)
  t.false(await linkIn(b, 'eth1'))
  t.false(existsSync(entryB))
  t.true(await linkIn(a, 'eth1'), "another guest's interrupted run is left to that guest's ops and to gc")
  t.true(existsSync(entryA))
})

rootTest('an op on a guest waits while another plumb is undoing that guest\'s interrupted run, then finishes what is left', async (t) => {
  // (a gc undoing a killed run by name while the rerun made the same eth1 again undid the rerun's work)
  await holdGcLock(t)
  // held by a live recoverer (a gc that took it)
  const holder = execa('sleep', ['60'], { reject: false })
  t.teardown(() => void holder.kill('SIGKILL'))
  const { ns, file, held } = await heldGuest(t, holder.pid!)
  let settled = false
  const op = plumb('detach', `netns:${ns}`, '--all').finally(() => (settled = true))
  await new Promise((r) => setTimeout(r, 1500))
  t.false(settled, 'the op waits for the recoverer')
  t.true(await linkIn(ns, 'eth1'))
  holder.kill('SIGKILL')
  await holder
  // the holder died without finishing: the op takes the entry over and undoes it
  const r = await op
  t.is(r.exitCode, 0, r.stderr)
  t.false(await linkIn(ns, 'eth1'))
  t.false(existsSync(held))
  t.false(existsSync(file))
})

const straceTest = isRoot && hasBinary('strace') ? test : test.skip

/**
 * The program strace `stracePid` runs is in syscall number `nr` (x86_64's) on the path `path`
 * right now: its argument `arg` (0-based), a pointer, read back through /proc/PID/mem. The number
 * alone is not enough: strace stops the program at every syscall's entry (it filters by path in
 * its own process), and under load a poll can catch it at another openat than the delayed one.
 */
function tracedAt(stracePid: number, nr: number, arg: number, path: string): boolean {
  try {
    const pid = Number(readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim().split(' ')[0])
    if (!(pid > 0)) return false
    const [num, ...args] = readFileSync(`/proc/${pid}/syscall`, 'utf8').trim().split(' ')
    if (num !== String(nr) || args[arg] === undefined) return false
    const buf = Buffer.alloc(Buffer.byteLength(path) + 1)
    const fd = openSync(`/proc/${pid}/mem`, 'r')
    try {
      readSync(fd, buf, 0, buf.length, Number(BigInt(args[arg]!)))
    } finally {
      closeSync(fd)
    }
    return buf.equals(Buffer.concat([Buffer.from(path), Buffer.alloc(1)]))
  } catch {
    return false
  }
}

/**
 * An op on a guest (detach --all) racing another recoverer for the guest's killed-run entry:
 * strace holds the op for 2 s at a syscall (`trace`: its strace arguments for the entry `file`;
 * `at`: x86_64's number of that syscall, and which of its arguments is the entry's path), while a stand-in recoverer (a live sleep) takes the entry
 * by its rename. The op must then wait for that recoverer, and finish once it is done. Returns
 * strace's log.
 */
async function raceForEntry(t: ExecutionContext, what: string, at: [nr: number, arg: number], trace: (file: string) => string[]): Promise<{ file: string; log: string }> {
  await holdGcLock(t)
  const ns = await makeNetns(t)
  await unmarkedVeth(ns, 'eth1')
  const file = writeEntry(t, { pid: await deadPid(), start: 1, guests: [nsId(`/run/netns/${ns}`)], intents: [{ t: 'link', where: where(ns), name: 'eth1', kind: 'veth' }] })
  let settled = false
  const log = `/tmp/${uniq()}.strace`
  t.teardown(() => rmSync(log, { force: true }))
  const proc = execa('strace', ['-f', '-qq', '-o', log, ...trace(file), process.execPath, PLUMB_BIN, 'detach', `netns:${ns}`, '--all'], { reject: false, stdin: 'ignore' })
  const op = proc.finally(() => (settled = true))
  await waitFor(() => tracedAt(proc.pid!, at[0], at[1], file) && existsSync(file), { timeout: 20_000, what: `the op to reach ${what}` })
  // meanwhile another recoverer (a live process standing for a gc) takes the entry and is undoing it
  const holder = execa('sleep', ['60'], { reject: false })
  t.teardown(() => void holder.kill('SIGKILL'))
  const taken = `${file}.recovering.${holder.pid}`
  renameSync(file, taken)
  // once strace lets it go the op finds the entry gone: it must look again, find the holder and
  // wait (going ahead, it would work on a guest being undone under it)
  await new Promise((r) => setTimeout(r, 3500))
  t.false(settled, `the op, having found the entry taken at ${what}, waits for the recoverer that took it`)
  // the recoverer finishes: the killed run's eth1 gone, its entry removed
  await sh('ip', ['-n', ns, 'link', 'del', 'eth1'])
  rmSync(taken)
  holder.kill('SIGKILL')
  const r = await op
  t.is(r.exitCode, 0, r.stderr)
  t.false(await linkIn(ns, 'eth1'))
  t.deepEqual(readdirSync(DIR).filter((f) => f.startsWith(file.slice(DIR.length + 1))), [])
  return { file, log }
}

straceTest("an op that loses the race for a killed run's entry (another recoverer renamed it between the op's read and its rename) waits for that recoverer too", async (t) => {
  // held at its first rename (taking the entry: nothing before it renames); x86_64's rename is 82
  const { file, log } = await raceForEntry(t, 'its rename', [82, 0], () => ['-e', 'trace=rename', '-e', 'inject=rename:delay_enter=2000000:when=1'])
  // the race was the one meant: the op's first rename was its take of the entry, and it lost
  const first = readFileSync(log, 'utf8').split('\n').find((l) => l.includes('rename('))
  t.true(first?.includes(`rename("${file}", "${file}.recovering.`) && first.includes('= -1 ENOENT'), `the op's first rename: ${first}`)
})

straceTest("an op whose listing of the journal named a killed run's entry that another recoverer renamed before the op read it waits for that recoverer too", async (t) => {
  // held at its open of the entry, after the listing that named it; x86_64's openat is 257
  const { file, log } = await raceForEntry(t, 'its open of the entry', [257, 1], (entry) => ['-P', entry, '-e', 'trace=openat', '-e', 'inject=openat:delay_enter=2000000:when=1'])
  const first = readFileSync(log, 'utf8').split('\n').find((l) => l.includes('openat('))
  t.true(first?.includes(`"${file}"`) && first.includes('= -1 ENOENT'), `the op's first open of the entry: ${first}`)
})

straceTest("gc undoes a killed run's entry as the run left it when it died, not as gc first read it while the run was alive", async (t) => {
  await holdGcLock(t)
  const ns = await makeNetns(t)
  await unmarkedVeth(ns, 'eth1')
  // the run: alive while gc lists the journal, its entry announcing eth1
  const run = execa('sleep', ['60'], { reject: false })
  t.teardown(() => void run.kill('SIGKILL'))
  await waitFor(() => cmdlineOf(run.pid!) === 'sleep 60', { what: 'the run to exec' })
  const entry = { pid: run.pid!, start: startOf(run.pid!), guests: [nsId(`/run/netns/${ns}`)], intents: [{ t: 'link', where: where(ns), name: 'eth1', kind: 'veth' }] }
  const file = writeEntry(t, entry)
  // gc held for 2 s at its look at the run's process (after its listing read the entry); x86_64's openat is 257
  const stat = `/proc/${run.pid}/stat`
  const gc = execa('strace', ['-f', '-qq', '-o', '/dev/null', '-P', stat, '-e', 'trace=openat', '-e', 'inject=openat:delay_enter=2000000:when=1', process.execPath, PLUMB_BIN, 'gc', '--json'], { reject: false, stdin: 'ignore' })
  await waitFor(() => tracedAt(gc.pid!, 257, 1, stat), { timeout: 20_000, what: "gc to reach its look at the run's process" })
  // meanwhile the run announces its next step (eth2), takes it, and is killed
  const next = `${file}.${run.pid}.tmp`
  writeFileSync(next, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), intents: [...entry.intents, { t: 'link', where: where(ns), name: 'eth2', kind: 'veth' }] }))
  renameSync(next, file)
  await unmarkedVeth(ns, 'eth2')
  run.kill('SIGKILL')
  await run
  const r = await gc
  t.is(r.exitCode, 0, r.stderr)
  t.false(await linkIn(ns, 'eth1'))
  t.false(await linkIn(ns, 'eth2'), 'the step the run announced after gc first read its entry is undone too')
  t.deepEqual(readdirSync(DIR).filter((f) => f.startsWith(file.slice(DIR.length + 1))), [], 'its entry is finished')
  t.true(JSON.parse(r.stdout).plan.some((l: string) => l.includes('link del eth2')), `gc says so: ${r.stdout}`)
})

rootTest("a dead run's entry as it left it (what a lab deploy reads a dead run's claims from): read again after the listing, under a recoverer's name too, none once finished", async (t) => {
  // a gc meanwhile would finish the dead run's entry
  await holdGcLock(t)
  const file = writeEntry(t, { pid: await deadPid(), start: 1, guests: [], intents: [] })
  const listed = readJournal().entries.find((s) => s.file === file)!
  t.deepEqual(listed.entry.intents, [])
  // written again after the listing read it (its writer announced a netns before it was killed)
  const intent = { t: 'netns', name: uniq('n'), mark: 'plumb:1 role=netns' }
  writeFileSync(file, JSON.stringify({ ...listed.entry, intents: [intent] }))
  t.deepEqual(finalEntry(listed)?.intents, [intent])
  renameSync(file, `${file}.recovering.1`)
  t.deepEqual(finalEntry(listed)?.intents, [intent], 'under the name a recoverer gave it')
  rmSync(`${file}.recovering.1`)
  t.is(finalEntry(listed), undefined, 'finished')
})

rootTest('a recoverer killed and not yet reaped (a zombie) holds nothing: the op takes its entry over at once', async (t) => {
  await holdGcLock(t)
  // sh forks a child that exits once sh has become a sleep, which never reaps it
  const parent = execa('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 60'], { reject: false })
  t.teardown(() => void parent.kill('SIGKILL'))
  const zombie = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))))
  await waitFor(() => /\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8')), { what: 'the child to be a zombie' })
  const { ns, held } = await heldGuest(t, zombie)
  let settled = false
  const op = plumb('detach', `netns:${ns}`, '--all').finally(() => (settled = true))
  await waitFor(() => settled, { timeout: 15_000, what: 'the op, which must not wait for a zombie' })
  const r = await op
  t.is(r.exitCode, 0, r.stderr)
  t.false(await linkIn(ns, 'eth1'))
  t.false(existsSync(held))
})

rootTest("an attach whose rerun first removed a killed run's bridge rule (the bridge left without plumb's port) adds the rule again, though its early read of the firewall found it", async (t) => {
  await holdGcLock(t)
  if (!(await forwardDropActive())) return t.pass('no FORWARD DROP here: plumb adds no rule at all')
  const f = await fixture(t)
  // the user's bridge; the killed run's rule on it, its port gone
  await sh('ip', ['link', 'add', f.br, 'type', 'bridge'])
  await sh('ip', ['link', 'set', f.br, 'up'])
  t.is((await plumb('attach-veth', f.guest, f.br, f.v4(2))).exitCode, 0)
  await sh('ip', ['-n', f.ns, 'link', 'del', 'eth1'])
  t.is((await firewallRules('iptables', f.br)).length, 1)
  writeEntry(t, { pid: await deadPid(), start: 1, guests: [nsId(`/run/netns/${f.ns}`)], intents: [{ t: 'fw', bridge: f.br }] })
  const r = await plumb('attach-veth', f.guest, f.br, f.v4(2))
  t.is(r.exitCode, 0, r.stderr)
  t.regex(r.stdout, /finished an interrupted plumb first/)
  t.is((await firewallRules('iptables', f.br)).length, 1, `the rule is there: ${r.stdout}`)
  t.is((await plumb('detach', f.guest, '--all')).exitCode, 0)
  t.deepEqual(await firewallRules('iptables', f.br), [], 'detach removes it with the last port')
})

rootTest('what no longer looks like what the killed op made is kept, with its entry, and gc says why', async (t) => {
  await holdGcLock(t)
  const ns = await makeNetns(t)
  await unmarkedVeth(ns, 'eth1', 'someone else made this')
  const file = writeEntry(t, { pid: await deadPid(), start: 1, guests: [nsId(`/run/netns/${ns}`)], intents: [{ t: 'link', where: where(ns), name: 'eth1', kind: 'veth' }] })
  const r = await plumb('gc')
  t.is(r.exitCode, 0, r.stderr)
  t.true(await linkIn(ns, 'eth1'), 'a link with a foreign alias is never deleted')
  t.true(existsSync(file), 'the entry stays for a later try')
  t.regex(r.stdout + r.stderr, /kept an interrupted plumb run's journal entry: .*another alias/)
})

rootTest("an entry is undone only in the netns its writer took for the host (plumb run inside another netns acting as a host)", async (t) => {
  await holdGcLock(t)
  const hostNs = await makeNetns(t)
  const br = uniq('b')
  await sh('ip', ['-n', hostNs, 'link', 'add', br, 'type', 'bridge'])
  const file = writeEntry(t, { pid: await deadPid(), start: 1, hostNs: nsId(`/run/netns/${hostNs}`), guests: [], intents: [{ t: 'bridge', name: br }] })
  const onHost = await plumb('gc')
  t.is(onHost.exitCode, 0, onHost.stderr)
  t.true(existsSync(file), "the machine's own gc leaves another host netns's entry")
  t.true((await guestLinks(hostNs)).has(br))
  const inside = await plumbIn(hostNs, 'gc')
  t.is(inside.exitCode, 0, inside.stderr)
  t.false((await guestLinks(hostNs)).has(br), "that host's gc deletes the unmarked, empty bridge the killed run made")
  t.false(existsSync(file))
})

rootTest('an unreadable journal file is reported by gc, never fatal, never deleted; ops on guests ignore it', async (t) => {
  await holdGcLock(t)
  mkdirSync(DIR, { recursive: true })
  const file = `${DIR}/${uniq()}.json`
  writeFileSync(file, 'not json')
  t.teardown(() => rmSync(file, { force: true }))
  // a name that cannot be opened however often the journal is listed again (an entry gone since
  // the listing is looked for again under its new name): a dangling link
  const dangling = `${DIR}/${uniq()}.json`
  symlinkSync(`/nonexistent/${uniq()}`, dangling)
  t.teardown(() => rmSync(dangling, { force: true }))
  const ns = await makeNetns(t)
  const op = await plumb('detach', `netns:${ns}`, '--all')
  t.is(op.exitCode, 0, op.stderr)
  t.notRegex(op.stdout + op.stderr, /journal/)
  const r = await plumb('gc')
  t.is(r.exitCode, 0, r.stderr)
  t.true(r.stdout.includes(file), 'gc names the file')
  t.true(r.stdout.includes(dangling), 'gc names the dangling link')
  t.true(existsSync(file))
  t.truthy(lstatSync(dangling, { throwIfNoEntry: false }), 'the dangling link is still there')
})

rootTest("gc removes the temporary files a killed writer left beside plumb's state (a dead pid's NAME.PID.tmp), not a live writer's", async (t) => {
  await holdGcLock(t)
  const dead = `/run/plumb/firewall-tables.json.${await deadPid()}.tmp`
  const live = `/run/plumb/firewall-tables.json.${process.pid}.tmp`
  for (const f of [dead, live]) {
    writeFileSync(f, '')
    t.teardown(() => rmSync(f, { force: true }))
  }
  const r = await plumb('gc')
  t.is(r.exitCode, 0, r.stderr)
  t.false(existsSync(dead), "the dead writer's temporary file is gone")
  t.true(existsSync(live), "a live writer's stays")
})

rootTest("an entry whose guest was made anew since (the same name): gc leaves the new guest's host end of the op's name alone, and still undoes a host end whose peer is the op's", async (t) => {
  await holdGcLock(t)
  // the old guest of a killed attach, and its host end
  const ns = await makeNetns(t)
  const hostEnd = `${uniq('h', { dash: false })}`
  t.teardown(async () => void (await sh('ip', ['link', 'del', hostEnd]).catch(() => undefined)))
  const addVeth = async (): Promise<void> => {
    await sh('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns])
  }
  await addVeth()
  const old = where(ns)
  writeEntry(t, { pid: await deadPid(), start: 1, guests: [nsId(`/run/netns/${ns}`)], intents: [{ t: 'link', where: { ns: 'host' }, name: hostEnd, kind: 'veth', peer: old }] })
  // made anew under the same name (a lab node, a restarted container), and a rerun's host end of
  // the same name. The old netns is held open meanwhile: a freed netns's inode number is handed
  // to the next one made (the limit of telling netns apart by inode: see the journal's notes)
  const holdOld = openSync(`/run/netns/${ns}`, 'r')
  t.teardown(() => closeSync(holdOld))
  await sh('ip', ['link', 'del', hostEnd])
  await sh('ip', ['netns', 'del', ns])
  await sh('ip', ['netns', 'add', ns])
  t.not(nsId(`/run/netns/${ns}`).ino, old.ino, 'another netns')
  await addVeth()
  const r = await plumb('gc')
  t.is(r.exitCode, 0, r.stderr)
  t.true((await sh('ip', ['-j', 'link', 'show'])).includes(`"${hostEnd}"`), "the rerun's host end stays")
  t.false(readdirSync(DIR).some((f) => readFileSync(`${DIR}/${f}`, 'utf8').includes(hostEnd)), 'the entry is finished')

  // the same entry for the guest as it is now: that host end is the op's, and goes
  writeEntry(t, { pid: await deadPid(), start: 1, guests: [nsId(`/run/netns/${ns}`)], intents: [{ t: 'link', where: { ns: 'host' }, name: hostEnd, kind: 'veth', peer: where(ns) }] })
  const again = await plumb('gc')
  t.is(again.exitCode, 0, again.stderr)
  t.false((await sh('ip', ['-j', 'link', 'show'])).includes(`"${hostEnd}"`), "the op's own host end is undone")
  t.false(await linkIn(ns, 'eth1'), 'its peer with it')
})

rootTest("a rerun's host end made while gc is undoing the killed run's entry (gc waiting for the bridge lock) is told from the op's when gc comes to it, and stays", async (t) => {
  // (a lab deploy's rerun beside a gc: the host end it had just made was deleted under it in a
  // CI rehearsal; gc had judged the entry's host ends once, before it waited, when none was there)
  await holdGcLock(t)
  const ns = await makeNetns(t)
  const hostEnd = `${uniq('h', { dash: false })}`
  t.teardown(async () => void (await sh('ip', ['link', 'del', hostEnd]).catch(() => undefined)))
  const old = where(ns)
  // the old guest gone (held open: its inode is not handed on), made anew under the same name
  const holdOld = openSync(`/run/netns/${ns}`, 'r')
  t.teardown(() => closeSync(holdOld))
  await sh('ip', ['netns', 'del', ns])
  await sh('ip', ['netns', 'add', ns])
  // undone last to first: the bridge first, which waits for the bridge lock, then the host end
  const file = writeEntry(t, {
    pid: await deadPid(),
    start: 1,
    guests: [{ dev: old.dev, ino: old.ino, path: old.path }],
    intents: [
      { t: 'link', where: { ns: 'host' }, name: hostEnd, kind: 'veth', peer: old },
      { t: 'bridge', name: uniq('b', { dash: false }) },
    ],
  })
  // flock holds the lock itself (-o: its sleep does not inherit it); both stopped by their pids
  const holder = execa('flock', ['-x', '-o', '/run/plumb/bridges.lock', 'sleep', '60'], { reject: false })
  const release = async (): Promise<void> => {
    const sleeper = Number(readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim().split(' ')[0])
    holder.kill('SIGKILL')
    await holder
    if (sleeper) process.kill(sleeper, 'SIGKILL')
  }
  t.teardown(() => void holder.kill('SIGKILL'))
  await waitFor(async () => (await sh('flock', ['-n', '-s', '/run/plumb/bridges.lock', 'true']).then(() => false, () => true)), { what: 'the bridge lock held' })
  const gc = plumb('gc')
  // gc has taken the entry (renamed it) and judged it; now the rerun makes its host end
  await waitFor(() => readdirSync(DIR).some((f) => `${DIR}/${f}`.startsWith(`${file}.recovering.`)), { what: 'gc taking the entry', timeout: 20_000 })
  await new Promise((r) => setTimeout(r, 500))
  await sh('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns])
  await release()
  const r = await gc
  t.is(r.exitCode, 0, r.stderr)
  t.true((await sh('ip', ['-j', 'link', 'show'])).includes(`"${hostEnd}"`), "the rerun's host end stays")
  t.true(await linkIn(ns, 'eth1'), 'and its peer in the guest')
  t.false(readdirSync(DIR).some((f) => `${DIR}/${f}`.startsWith(file)), 'the entry is finished')
})

rootTest("an entry whose guest was made anew since: gc leaves the rules of the same keys a later run made for the new guest, and still undoes them for the guest as it is", async (t) => {
  await holdGcLock(t)
  const ns = await makeNetns(t)
  const br = uniq('b', { dash: false })
  t.teardown(async () => void (await plumb('detach', `netns:${ns}`, '--all')))
  t.teardown(async () => void (await sh('ip', ['link', 'del', br]).catch(() => undefined)))
  const net = `198.18.${200 + Math.floor(Math.random() * 50)}`
  const attachAndExpose = async (port?: string): Promise<string> => {
    const a = await plumb('attach-veth', `netns:${ns}`, br, `${net}.10/24`)
    t.is(a.exitCode, 0, a.stderr)
    const x = await plumb('expose', `netns:${ns}`, port ? `${port}:80` : '80')
    t.is(x.exitCode, 0, x.stderr)
    const rule = (await sh('iptables-save')).split('\n').find((l) => l.includes(`guest=netns:${ns}`) && l.includes('--dport'))
    return /--dport (\d+)/.exec(rule ?? '')![1]!
  }
  const port = await attachAndExpose()
  const key = `expose tcp :${port}`
  const entry = (): Record<string, unknown> => ({ op: 'expose', pid: 0, start: 1, guests: [{ ...nsId(`/run/netns/${ns}`), path: `/run/netns/${ns}` }], intents: [{ t: 'rules', binary: 'iptables', keys: [key] }] })
  // the killed run's entry, for the guest as it was
  const killed = entry()
  // the guest made anew under its name, and a later run publishing the same port for it
  const d = await plumb('detach', `netns:${ns}`, '--all')
  t.is(d.exitCode, 0, d.stderr)
  // held open: its inode number is not handed to the netns made next
  const holdOld = openSync(`/run/netns/${ns}`, 'r')
  t.teardown(() => closeSync(holdOld))
  await sh('ip', ['netns', 'del', ns])
  await sh('ip', ['netns', 'add', ns])
  writeEntry(t, { ...killed, pid: await deadPid() })
  t.is(await attachAndExpose(port), port)
  const rules = async (): Promise<number> => (await sh('iptables-save')).split('\n').filter((l) => l.includes(`guest=netns:${ns}`)).length
  const before = await rules()
  t.true(before > 0)
  const r = await plumb('gc')
  t.is(r.exitCode, 0, r.stderr)
  t.is(await rules(), before, "the new guest's published port stays")
  t.false(readdirSync(DIR).some((f) => readFileSync(`${DIR}/${f}`, 'utf8').includes(key)), 'the entry is finished')

  // the same entry for the guest as it is now: those rules are the op's, and go
  writeEntry(t, { ...entry(), pid: await deadPid() })
  const again = await plumb('gc')
  t.is(again.exitCode, 0, again.stderr)
  t.is(await rules(), 0, "the op's own rules are undone")
})

rootTest("an entry's netns is told by its cookie too: one with the same inode and another cookie (a later netns given the freed inode) is not the op's, and its host end stays", async (t) => {
  await holdGcLock(t)
  const ns = await makeNetns(t)
  const hostEnd = `${uniq('h', { dash: false })}`
  t.teardown(async () => void (await sh('ip', ['link', 'del', hostEnd]).catch(() => undefined)))
  await sh('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns])
  const cookie = netnsAt(`/run/netns/${ns}`)!.cookie!
  t.true(cookie > 0)
  // the inode of the netns there now, the cookie of another: what a reused inode looks like
  const entry = (c: number): Record<string, unknown> => ({
    guests: [{ ...nsId(`/run/netns/${ns}`), path: `/run/netns/${ns}`, cookie: c }],
    intents: [{ t: 'link', where: { ns: 'host' }, name: hostEnd, kind: 'veth', peer: { ...where(ns), cookie: c } }],
  })
  writeEntry(t, { ...entry(cookie + 1000), pid: await deadPid(), start: 1 })
  const r = await plumb('gc')
  t.is(r.exitCode, 0, r.stderr)
  t.true((await sh('ip', ['-j', 'link', 'show'])).includes(`"${hostEnd}"`), "another netns's host end stays")
  writeEntry(t, { ...entry(cookie), pid: await deadPid(), start: 1 })
  const again = await plumb('gc')
  t.is(again.exitCode, 0, again.stderr)
  t.false((await sh('ip', ['-j', 'link', 'show'])).includes(`"${hostEnd}"`), "the op's own host end is undone")
})

rootTest("a killed lab deploy's netns node goes with its veths at once: their host ends' names are free when gc returns", async (t) => {
  await holdGcLock(t)
  const ns = uniq()
  const mark = `plumb:1 role=node op=lab lab=${ns} node=a`
  const hostEnd = `${uniq('h', { dash: false })}`
  await sh('ip', ['netns', 'add', ns])
  t.teardown(async () => void (await sh('ip', ['netns', 'del', ns]).catch(() => undefined)))
  t.teardown(async () => void (await sh('ip', ['link', 'del', hostEnd]).catch(() => undefined)))
  await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'alias', mark])
  await sh('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns])
  writeEntry(t, { op: 'lab deploy', pid: await deadPid(), start: 1, guests: [nsId('/proc/self/ns/net')], intents: [{ t: 'netns', name: ns, mark }] })
  // The netns outlives its name while anything holds it (here this fd; otherwise the kernel's
  // deferred clean-up, which is quick on a quiet machine): its veths must not wait for that.
  const held = openSync(`/run/netns/${ns}`, 'r')
  t.teardown(() => closeSync(held))
  const r = await plumb('gc')
  t.is(r.exitCode, 0, r.stderr)
  t.false(existsSync(`/run/netns/${ns}`), 'the netns node is gone')
  // right away, not after the kernel's deferred clean-up of the netns: a rerun makes it again at once
  t.false((await sh('ip', ['-j', 'link', 'show'])).includes(`"${hostEnd}"`), "its veth's host end is gone with it")
})

/** A lab of one netns node, deployed: its file, the node's name, netns identity and mark. */
async function deployedNode(t: ExecutionContext): Promise<{ f: ReturnType<typeof labFixture>; file: string; node: string; made: NonNullable<ReturnType<typeof netnsAt>>; mark: string }> {
  const f = labFixture(t)
  const file = f.write('lab.yml', `name: ${f.id}\nprefix: __lab-name\ntopology:\n  nodes:\n    a: {kind: netns}\n`)
  t.is((await f.plumb('lab', 'deploy', file)).exitCode, 0)
  const node = `${f.id}-a`
  const made = netnsAt(`/run/netns/${node}`)!
  const [lo] = await ipJson(['link', 'show', 'lo'], node)
  return { f, file, node, made, mark: lo?.ifalias as string }
}

/**
 * The killed deploy's entry as it stands once it made the node (its netns intent amended with the
 * node's identity), journaled on `guest`, and what keeps it from being finished: a host link of
 * one of its names that now carries someone else's alias. Its path and the link's name.
 */
async function blockedDeployEntry(t: ExecutionContext, node: { node: string; made: NonNullable<ReturnType<typeof netnsAt>>; mark: string }, guest: string): Promise<{ entry: string; blocker: string }> {
  const blocker = uniq('h', { dash: false })
  await sh('ip', ['link', 'add', blocker, 'type', 'veth', 'peer', 'name', `${blocker}p`])
  t.teardown(async () => void (await sh('ip', ['link', 'del', blocker]).catch(() => undefined)))
  await sh('ip', ['link', 'set', blocker, 'alias', 'not plumb'])
  const entry = writeEntry(t, {
    op: 'lab deploy',
    pid: await deadPid(),
    start: 1,
    guests: [nsId(guest)],
    intents: [
      { t: 'netns', name: node.node, mark: node.mark, id: node.made },
      { t: 'link', where: { ns: 'host' }, name: blocker, kind: 'veth' },
    ],
  })
  return { entry, blocker }
}

/** The refusal of a rerun deploy that could not finish the entry blockedDeployEntry wrote. */
const refusedFor = (node: string, blocker: string): RegExp =>
  new RegExp(`netns ${node} is still the unfinished work of a killed plumb \\(lab deploy, pid \\d+\\): .*could not undo veth ${blocker}: "${blocker}" now carries another alias`)

rootTest("a killed deploy's entry that could not be finished keeps the rerun off its netns node; once the node was made anew, finishing the entry leaves the new one", async (t) => {
  await holdGcLock(t)
  const deployed = await deployedNode(t)
  const { f, file, node, made, mark } = deployed
  t.regex(mark, /role=node op=lab/)
  const { entry, blocker } = await blockedDeployEntry(t, deployed, '/proc/self/ns/net')

  // the rerun cannot finish the entry, and does not go on with the node a gc would then delete
  const rerun = await f.plumb('lab', 'deploy', file)
  t.is(rerun.exitCode, 1, rerun.stderr)
  t.regex(rerun.stderr, refusedFor(node, blocker))
  t.regex(rerun.stderr, /hint: .*plumb lab destroy/)
  t.deepEqual(netnsAt(`/run/netns/${node}`), made, 'the node is left as it was')

  // destroy takes the node away; the next deploy makes a new one (another cookie), not the entry's
  t.is((await f.plumb('lab', 'destroy', file)).exitCode, 0)
  const again = await f.plumb('lab', 'deploy', file)
  t.is(again.exitCode, 0, again.stderr)
  const anew = netnsAt(`/run/netns/${node}`)
  t.truthy(anew)
  t.notDeepEqual(anew, made)

  // the entry finished once nothing stands in its way: the new node, with the same mark and only lo, stays
  await sh('ip', ['link', 'del', blocker])
  const gc = await plumb('gc')
  t.is(gc.exitCode, 0, gc.stderr)
  t.false(existsSync(entry), 'the entry is finished')
  t.deepEqual(netnsAt(`/run/netns/${node}`), anew, "the deploy's own node is there")
})

rootTest("a killed deploy's entry on the node's own netns that could not be finished: the rerun's refusal says why", async (t) => {
  await holdGcLock(t)
  const deployed = await deployedNode(t)
  const { f, file, node, made } = deployed
  // the node is the entry's guest, not the host: the rerun finishes it as it reads the node
  // (observe's recovery), and the refusal takes its reason from there
  const { entry, blocker } = await blockedDeployEntry(t, deployed, `/run/netns/${node}`)
  const rerun = await f.plumb('lab', 'deploy', file)
  t.is(rerun.exitCode, 1, rerun.stderr)
  t.regex(rerun.stderr, refusedFor(node, blocker))
  t.deepEqual(netnsAt(`/run/netns/${node}`), made, 'the node is left as it was')
  t.true(existsSync(entry), 'the entry is kept for gc')
})

rootTest("a rerun of a killed deploy whose node another plumb is finishing right now waits for it, then makes the node anew", async (t) => {
  await holdGcLock(t)
  const { f, file, node, made, mark } = await deployedNode(t)
  // The killed deploy's entry, taken by a recoverer (a gc) that is undoing it: a sleeper stands in
  // for that live plumb, and the test finishes its work (the node deleted, the entry removed).
  const recoverer = execa('sleep', ['60'], { reject: false })
  t.teardown(() => void recoverer.kill('SIGKILL'))
  await waitFor(() => cmdlineOf(recoverer.pid!) === 'sleep 60', { what: 'the sleeper to exec' })
  const entry = writeEntry(t, { op: 'lab deploy', pid: await deadPid(), start: 1, guests: [nsId('/proc/self/ns/net')], intents: [{ t: 'netns', name: node, mark, id: made }] })
  const held = `${entry}.recovering.${recoverer.pid}`
  renameSync(entry, held)

  let settled = false
  const rerun = f.plumb('lab', 'deploy', file).finally(() => (settled = true))
  await new Promise((r) => setTimeout(r, 2_000))
  t.false(settled, 'the rerun waits while the recoverer is at work')
  t.deepEqual(netnsAt(`/run/netns/${node}`), made, 'and leaves the node to it')
  await sh('ip', ['netns', 'del', node])
  rmSync(held)
  recoverer.kill('SIGKILL')
  await recoverer

  const r = await rerun
  t.is(r.exitCode, 0, r.stderr)
  const anew = netnsAt(`/run/netns/${node}`)
  t.truthy(anew, 'the rerun made the node the recoverer removed')
  t.notDeepEqual(anew, made)
  const [lo2] = await ipJson(['link', 'show', 'lo'], node)
  t.regex(String(lo2?.ifalias), /role=node op=lab/)
})

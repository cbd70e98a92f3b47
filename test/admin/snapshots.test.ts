import { test } from 'node:test'
import { existsSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SnapshotDirectory } from '../../src/admin/snapshots.ts'
import { tempDir } from '../helpers/app.ts'

test('snapshot directory: beside a sqlite file only', (t) => {
  t.assert.equal(SnapshotDirectory.forStore('sqlite:///var/lib/cpx/cache.sqlite'), '/var/lib/cpx/cache.sqlite-metrics')
  t.assert.equal(SnapshotDirectory.forStore('sqlite://./data/cache.sqlite'), './data/cache.sqlite-metrics')
  t.assert.equal(SnapshotDirectory.forStore('sqlite://:memory:'), undefined)
  t.assert.equal(SnapshotDirectory.forStore('memory://'), undefined)
})

test('snapshot directory: a worker reads the others\' live snapshots, not its own, not stale ones', async (t) => {
  const dir = join(tempDir(t), 'cache.sqlite-metrics')
  const a = new SnapshotDirectory(dir, '100')
  const b = new SnapshotDirectory(dir, '200')
  const c = new SnapshotDirectory(dir, '300')
  t.assert.deepEqual(await a.others(), [], 'no directory yet')
  await a.write([{ name: 'a' }])
  await b.write([{ name: 'b' }])
  await c.write([{ name: 'c' }])
  await b.write([{ name: 'b2' }]) // replaced whole
  t.assert.deepEqual((await a.others() as Array<Array<{ name: string }>>).map((s) => s[0].name).sort(), ['b2', 'c'])
  // c stopped 6 s ago: left out; a file of an hour ago, and an old temporary file, are deleted.
  const old = (seconds: number): Date => new Date(Date.now() - seconds * 1000)
  utimesSync(join(dir, '300.json'), old(6), old(6))
  writeFileSync(join(dir, '400.json'), '[]')
  utimesSync(join(dir, '400.json'), old(3700), old(3700))
  writeFileSync(join(dir, '500.json.1.tmp'), '[')
  utimesSync(join(dir, '500.json.1.tmp'), old(3700), old(3700))
  writeFileSync(join(dir, '600.json'), '{ half a fi') // unreadable: skipped
  t.assert.deepEqual((await a.others() as Array<Array<{ name: string }>>).map((s) => s[0].name), ['b2'])
  t.assert.deepEqual(readdirSync(dir).sort(), ['100.json', '200.json', '300.json', '600.json'])
  b.remove()
  t.assert.equal(existsSync(join(dir, '200.json')), false)
  t.assert.deepEqual(await a.others(), [])
})

test('snapshot directory: a scrape on one worker gets a snapshot another took after it asked, several times', async (t) => {
  const dir = join(tempDir(t), 'cache.sqlite-metrics')
  const a = new SnapshotDirectory(dir, '100')
  const b = new SnapshotDirectory(dir, '200')
  // b publishes on its own only once a minute: a snapshot newer than a scrape was asked for by it.
  const publisher = b.publisher(() => [{ name: 'b', at: Date.now() }], (error) => { throw error }, 60_000)
  t.after(publisher.close)
  await publisher.publish() // as its first timed publish would: a now knows b is live
  for (let scrape = 1; scrape <= 3; scrape++) {
    await new Promise((resolve) => setTimeout(resolve, 20)) // mtimes are compared in ms
    const asked = Date.now()
    const seen = await a.fresh() as Array<Array<{ at: number }>>
    t.assert.equal(seen.length, 1, `scrape ${scrape}: b's snapshot is there`)
    t.assert.equal(seen[0][0].at >= asked, true, `scrape ${scrape}: b's snapshot was taken after a asked (${seen[0][0].at - asked} ms)`)
    t.assert.equal(Date.now() - asked < 2000, true, 'bounded')
  }
  await publisher.close()
  t.assert.equal(existsSync(join(dir, '200.json')), false, 'a closed publisher removes its snapshot')
})

test('snapshot directory: a worker still answers at once after the directory was deleted and made again', { timeout: 20_000 }, async (t) => {
  const dir = join(tempDir(t), 'cache.sqlite-metrics')
  const a = new SnapshotDirectory(dir, '100')
  const b = new SnapshotDirectory(dir, '200')
  const publisher = b.publisher(() => [{ name: 'b', at: Date.now() }], (error) => { throw error }, 60_000)
  t.after(publisher.close)
  rmSync(dir, { recursive: true, force: true }) // b's watch now watches nothing
  await a.fresh() // makes the directory again; b learns of it only from its once-a-second look
  // ... which publishes (b is live again for a) and watches the new directory.
  for (let i = 0; i < 100 && !existsSync(join(dir, '200.json')); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.assert.equal(existsSync(join(dir, '200.json')), true, 'b answered the request its watch missed')
  for (let scrape = 1; scrape <= 4; scrape++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const asked = Date.now()
    const seen = await a.fresh() as Array<Array<{ at: number }>>
    t.assert.equal(seen.length, 1, `scrape ${scrape}: b's snapshot is there`)
    t.assert.equal(seen[0][0].at >= asked, true, `scrape ${scrape}: taken after a asked (${seen[0][0].at - asked} ms): b watches the new directory`)
  }
})

test('snapshot directory: nothing is published after close, even with a request arriving as it closes', async (t) => {
  const dir = join(tempDir(t), 'cache.sqlite-metrics')
  const a = new SnapshotDirectory(dir, '100')
  const b = new SnapshotDirectory(dir, '200')
  const publisher = b.publisher(() => [{ name: 'b' }], (error) => { throw error }, 60_000)
  await publisher.publish()
  const asking = a.fresh()
  await publisher.close()
  await asking
  await new Promise((resolve) => setTimeout(resolve, 1200)) // past b's once-a-second look
  t.assert.equal(existsSync(join(dir, '200.json')), false, 'a closed publisher stays gone')
})

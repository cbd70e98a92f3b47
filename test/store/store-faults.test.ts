import { test, type TestContext } from 'node:test'
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import KeyvSqlite from '@keyv/sqlite'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { openStore, StoreUnavailableError, type CacheStore, type StoreOptions } from '../../src/store/index.ts'
import { testConfig } from '../helpers/app.ts'
import { startOrigin, type Origin } from '../helpers/origin.ts'

// Faults of the SQLite file under a running proxy: it starts (or keeps running), serves
// every request uncached, logs the failure once a minute, and caches again once the file
// is usable. Each fault is made for real (file system, mounts, attributes, bytes), not mocked.

/** A scratch directory; `defer`red cleanups run last-in first-out, then the directory goes. */
function scratch (t: TestContext): { dir: string, defer: (fn: () => unknown) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'cpx-faults-'))
  const undo: Array<() => unknown> = [() => rmSync(dir, { recursive: true, force: true })]
  t.after(async () => {
    for (const fn of undo.reverse()) {
      try {
        await fn()
      } catch (error) {
        console.error('cleanup failed:', error)
      }
    }
  })
  return { dir, defer: (fn) => undo.push(fn) }
}

/** Runs a command; the error message (stderr) if it fails. */
function run (command: string, ...args: string[]): string | undefined {
  try {
    execFileSync(command, args, { stdio: 'pipe' })
    return undefined
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim()
    return stderr !== undefined && stderr !== '' ? stderr : String(error)
  }
}

async function eventually (check: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await sleep(20)
  }
  return await check()
}

// ---------------------------------------------------------------------------------------
// The store on its own (short retry interval)

const FAST: StoreOptions = { reopenIntervalMs: 50, sweepIntervalMs: 0 }

async function open (t: TestContext, path: string, options: StoreOptions = FAST): Promise<CacheStore> {
  const store = await openStore(`sqlite://${path}`, options)
  t.after(() => store.close())
  return store
}

/** True once a write and a read back succeed. */
async function works (store: CacheStore, key = 'probe'): Promise<boolean> {
  try {
    await store.set(key, Buffer.from(key))
    return (await store.get(key))?.toString() === key
  } catch {
    return false
  }
}

function corruptCopies (dir: string, name = 'cache.sqlite'): string[] {
  return readdirSync(dir).filter((file) => file.startsWith(`${name}.corrupt-`))
}

test('sqlite store: an unusable path opens anyway, every call rejects, it recovers in the background', async (t: TestContext) => {
  const { dir } = scratch(t)
  const blocker = join(dir, 'blocker')
  writeFileSync(blocker, 'a regular file where the directory should be')
  const messages: string[] = []
  const log = { info: (_: object, message: string) => messages.push(`info ${message}`), warn: (_: object, message: string) => messages.push(`warn ${message}`) }
  const store = await open(t, join(blocker, 'cache.sqlite'), { ...FAST, log })

  const calls: Array<[string, () => Promise<unknown>]> = [
    ['get', () => store.get('k')],
    ['set', () => store.set('k', Buffer.from('v'))],
    ['delete', () => store.delete('k')],
    ['acquireLease', () => store.acquireLease('k', 1000)],
    ['releaseLease', () => store.releaseLease('k')],
    ['hasLease', () => store.hasLease('k')],
    ['stats', () => store.stats()],
    ['sweep', () => store.sweep()]
  ]
  for (const [name, call] of calls) {
    await t.assert.rejects(call(), (error: unknown) => error instanceof StoreUnavailableError && /EEXIST|ENOTDIR/.test(String(error.cause)), name)
  }
  store.touch('k') // never throws
  store.onRemoteChange(() => {})
  await sleep(200) // several retries in the background, none of them crashing
  t.assert.equal(await works(store), false)

  rmSync(blocker)
  mkdirSync(blocker)
  t.assert.equal(await eventually(() => works(store)), true, 'usable again once the directory exists')
  t.assert.deepEqual(await store.stats(), { entries: 1, bytes: 5 })
  t.assert.deepEqual(messages, ['warn cache store unusable; retrying in the background', 'info cache store usable again'], 'one line per outage, one per recovery')
})

test('sqlite store: a path that is a directory (SQLITE_CANTOPEN) recovers when it is removed', async (t: TestContext) => {
  const { dir } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  mkdirSync(path)
  const store = await open(t, path)
  await t.assert.rejects(store.get('k'), (error: Error) => /SQLITE_CANTOPEN/.test(String(error.cause)))
  rmSync(path, { recursive: true })
  t.assert.equal(await eventually(() => works(store)), true)
  t.assert.equal(statSync(path).isFile(), true)
})

test('sqlite store: closing an unusable store stops its retries', async (t: TestContext) => {
  const { dir } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  mkdirSync(path)
  const store = await openStore(`sqlite://${path}`, { reopenIntervalMs: 5, sweepIntervalMs: 5 })
  store.onRemoteChange(() => {})
  await sleep(30)
  await store.close()
  rmSync(path, { recursive: true })
  await sleep(50)
  t.assert.equal(existsSync(path), false, 'no retry after close')
  await t.assert.rejects(store.get('k'), /closed/)
  store.touch('k')
})

test('sqlite store: a file of garbage is moved aside (with its -wal and -shm) and recreated on open', async (t: TestContext) => {
  const { dir } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  const garbage = randomBytes(16_384)
  writeFileSync(path, garbage)
  writeFileSync(`${path}-wal`, randomBytes(1000))
  writeFileSync(`${path}-shm`, randomBytes(1000))
  const store = await open(t, path)
  t.assert.equal(await works(store), true, 'usable at once')
  const aside = corruptCopies(dir)
  t.assert.deepEqual(aside.map((file) => file.replace(/corrupt-\d+/, 'corrupt-N')).sort(), ['cache.sqlite.corrupt-N', 'cache.sqlite.corrupt-N-shm', 'cache.sqlite.corrupt-N-wal'])
  t.assert.equal(readFileSync(join(dir, aside.find((file) => /corrupt-\d+$/.test(file)) as string)).equals(garbage), true, 'the bad file is kept for inspection')
})

/**
 * Overwrites every page but the first with garbage. SQLite keeps pages it already read in
 * its cache while the WAL does not change, so the file is checkpointed first and another
 * connection then commits (to page 1 only), as another worker would: the store's next read
 * comes from the damaged pages.
 */
async function corruptPages (path: string): Promise<void> {
  const other = new KeyvSqlite({ uri: `sqlite://${path}`, table: 'entries' })
  await other.query('PRAGMA wal_checkpoint(TRUNCATE)')
  const size = statSync(path).size
  const fd = openSync(path, 'r+')
  writeSync(fd, randomBytes(size - 4096), 0, size - 4096, 4096)
  closeSync(fd)
  await other.query('PRAGMA user_version = 7')
  await other.disconnect()
}

test('sqlite store: a file corrupted while open fails that call, is moved aside and recreated', async (t: TestContext) => {
  const { dir } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  const store = await open(t, path)
  for (let i = 0; i < 20; i++) await store.set(`k${i}`, Buffer.alloc(5000, i))
  await corruptPages(path)
  await t.assert.rejects(store.get('k3'), /SQLITE_CORRUPT/)
  t.assert.equal(await eventually(() => works(store)), true)
  t.assert.equal(corruptCopies(dir).length > 0, true, 'moved aside')
  t.assert.equal(await store.get('k3'), undefined, 'a new, empty file')
  t.assert.deepEqual(await store.stats(), { entries: 1, bytes: 5 })
})

test('sqlite store: a file deleted under the open store is recreated; other instances follow', async (t: TestContext) => {
  const { dir } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  const a = await open(t, path)
  const b = await open(t, path)
  await a.set('old', Buffer.from('old'))
  const before = statSync(path).ino
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
  t.assert.equal(await eventually(() => existsSync(path) && statSync(path).ino !== before), true, 'a new file at the path')
  t.assert.equal(await eventually(async () => (await a.get('old').catch(() => 'error')) === undefined && (await b.get('old').catch(() => 'error')) === undefined), true, 'both left the deleted file')
  await a.set('new', Buffer.from('new'))
  t.assert.equal((await b.get('new'))?.toString(), 'new', 'and share the new one')
})

/**
 * A writer process: stores values that carry their own length and SHA-256 (random sizes,
 * many spanning overflow pages), overwrites and deletes some, prints each key it stored.
 */
const WRITER = `
import { createHash, randomBytes } from 'node:crypto'
import { openStore } from ${JSON.stringify(new URL('../../src/store/index.ts', import.meta.url).href)}
const store = await openStore(process.argv[1], { sweepIntervalMs: 0, maxBytes: 8 * 1024 * 1024 })
for (let i = 0; ; i++) {
  const body = randomBytes(1000 + Math.floor(Math.random() * 200_000))
  const value = Buffer.concat([Buffer.from(createHash('sha256').update(body).digest('hex') + ' '), body])
  await store.set('k' + (i % 40), value, { expiresAt: Date.now() + 60_000 })
  if (i % 7 === 3) await store.delete('k' + ((i * 3) % 40))
  if (i % 25 === 0) await store.sweep()
  process.stdout.write(i + '\\n')
}
`

function whole (value: Buffer): boolean {
  const space = value.indexOf(0x20)
  return space === 64 && value.subarray(0, 64).toString() === createHash('sha256').update(value.subarray(65)).digest('hex')
}

test('sqlite store: an entry is stored whole or not at all, whenever the writer is killed', { timeout: 120_000 }, async (t: TestContext) => {
  const { dir } = scratch(t)
  const uri = `sqlite://${join(dir, 'cache.sqlite')}`
  for (let round = 0; round < 6; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', WRITER, uri], { stdio: ['ignore', 'pipe', 'pipe'] })
    let written = 0
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { written += chunk.toString().split('\n').length - 1 })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    // Kill it at a random moment after it has written some entries.
    t.assert.equal(await eventually(() => written >= 5 || child.exitCode !== null, 30_000), true, `round ${round}: the writer writes`)
    await sleep(Math.random() * 300)
    child.kill('SIGKILL')
    await exited
    t.assert.equal(stderr.includes('Error'), false, stderr)

    const store = await openStore(uri, { sweepIntervalMs: 0, maxBytes: 8 * 1024 * 1024 })
    try {
      let entries = 0
      let bytes = 0
      for (let i = 0; i < 40; i++) {
        const value = await store.get(`k${i}`)
        if (value === undefined) continue
        t.assert.equal(whole(value), true, `round ${round}: k${i} is whole`)
        entries++
        bytes += value.length
      }
      t.assert.equal(entries > 0, true, `round ${round}: entries survive`)
      t.assert.deepEqual(await store.stats(), { entries, bytes }, `round ${round}: the totals match the entries`)
    } finally {
      await store.close()
    }
  }
  const check = new KeyvSqlite({ uri, table: 'entries' })
  t.assert.deepEqual(await check.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }])
  await check.disconnect()
})

// ---------------------------------------------------------------------------------------
// The proxy over a faulty store

const BIG = Buffer.alloc(256 * 1024, 'big body ')
const bodyOf = (path: string): Buffer => path === '/big' ? BIG : Buffer.from(`body of ${path}`)

interface Proxy {
  app: FastifyInstance
  origin: Origin
  /** GETs `path` through the proxy, asserts 200 and the origin's body; the X-Cache value. */
  get (path: string): Promise<string>
  /** GETs `path` until it is a HIT; how many MISSes it took. */
  untilHit (path: string): Promise<number>
  /** How many 'cache store failed' lines were logged. */
  storeFailures (): number
}

async function startProxy (t: TestContext, defer: (fn: () => unknown) => void, storePath: string): Promise<Proxy> {
  const routes = Object.fromEntries(['/a', '/b', '/c', '/big'].map((path) => [path, (_req: unknown, res: import('node:http').ServerResponse) => {
    res.setHeader('cache-control', 'public, max-age=600')
    res.setHeader('content-type', 'text/plain')
    res.end(bodyOf(path))
  }]))
  const origin = await startOrigin(routes)
  defer(() => origin.close())
  const lines: string[] = []
  // The memory tier is off so that every lookup goes to the store.
  const config = testConfig({ CACHE_STORE: `sqlite://${storePath}`, MEMORY_CACHE_BYTES: '0', LOG_LEVEL: 'warn' })
  const app = await buildApp(config, { logStream: { write: (line) => { lines.push(line) } } })
  defer(() => app.close())
  await app.ready()

  async function get (path: string): Promise<string> {
    const res = await app.inject({ method: 'GET', url: `/${origin.host}${path}` })
    t.assert.equal(res.statusCode, 200, path)
    t.assert.equal(res.rawPayload.equals(bodyOf(path)), true, `${path}: the whole body`)
    return String(res.headers['x-cache'])
  }
  async function untilHit (path: string): Promise<number> {
    let misses = 0
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      const cache = await get(path)
      if (cache === 'HIT') return misses
      t.assert.equal(cache, 'MISS')
      misses++
      await sleep(50)
    }
    throw new Error(`${path} never became a HIT (${misses} misses)`)
  }
  return {
    app,
    origin,
    get,
    untilHit,
    storeFailures: () => lines.filter((line) => line.includes('cache store failed')).length
  }
}

/** A few requests while the store is broken: all answered by the origin, logged once. */
async function servedUncached (t: TestContext, proxy: Proxy, path: string, times = 4): Promise<void> {
  const before = proxy.origin.hits(path)
  for (let i = 0; i < times; i++) t.assert.equal(await proxy.get(path), 'MISS', `request ${i + 1} while broken`)
  t.assert.equal(proxy.origin.hits(path) - before, times, 'every request went to the origin')
  t.assert.equal(proxy.storeFailures(), 1, 'the failure is logged once (a minute)')
}

/** Once fixed: the next requests store the response and then serve it (HIT). */
async function cachesAgain (t: TestContext, proxy: Proxy, path: string): Promise<void> {
  const before = proxy.origin.hits(path)
  const misses = await proxy.untilHit(path)
  t.assert.equal(proxy.origin.hits(path) - before, misses, 'a HIT does not reach the origin')
  t.assert.equal(await proxy.get(path), 'HIT')
  t.assert.equal(proxy.origin.hits(path) - before, misses)
}

test('proxy: the store directory cannot exist (its parent is a file), then can', { timeout: 60_000 }, async (t: TestContext) => {
  const { dir, defer } = scratch(t)
  const blocker = join(dir, 'blocker')
  writeFileSync(blocker, 'not a directory')
  const proxy = await startProxy(t, defer, join(blocker, 'cache.sqlite')) // starts anyway
  await servedUncached(t, proxy, '/a')
  rmSync(blocker)
  mkdirSync(blocker)
  await cachesAgain(t, proxy, '/a')
  t.assert.equal(proxy.storeFailures(), 1, 'still one line')
  t.assert.equal(existsSync(join(blocker, 'cache.sqlite')), true)
})

test('proxy: the store path cannot be opened (a directory: SQLITE_CANTOPEN), then can', { timeout: 60_000 }, async (t: TestContext) => {
  const { dir, defer } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  mkdirSync(path)
  const proxy = await startProxy(t, defer, path)
  await servedUncached(t, proxy, '/a')
  rmSync(path, { recursive: true })
  await cachesAgain(t, proxy, '/a')
})

test('proxy: the store file deleted while running is recreated', { timeout: 60_000 }, async (t: TestContext) => {
  const { dir, defer } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  const proxy = await startProxy(t, defer, path)
  await cachesAgain(t, proxy, '/a')
  const before = statSync(path).ino
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
  t.assert.equal(await eventually(() => existsSync(path) && statSync(path).ino !== before), true, 'a new file at the path')
  // The file exists as soon as the store starts opening it; until the new connection is
  // ready, lookups still read the old (deleted) file, whose entries are still good.
  const hits = proxy.origin.hits('/a')
  t.assert.equal(await eventually(async () => await proxy.get('/a') === 'MISS'), true, 'the new file starts empty')
  t.assert.equal(proxy.origin.hits('/a'), hits + 1)
  await cachesAgain(t, proxy, '/b')
  await cachesAgain(t, proxy, '/a')
})

test('proxy: a store file of garbage bytes is moved aside and recreated at start', { timeout: 60_000 }, async (t: TestContext) => {
  const { dir, defer } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  const garbage = randomBytes(64 * 1024)
  writeFileSync(path, garbage)
  const proxy = await startProxy(t, defer, path)
  t.assert.equal(await proxy.get('/a'), 'MISS')
  await cachesAgain(t, proxy, '/a')
  const aside = corruptCopies(dir)
  t.assert.equal(aside.length, 1, aside.join(' '))
  t.assert.equal(readFileSync(join(dir, aside[0])).equals(garbage), true, 'the garbage is kept aside')
  t.assert.equal(proxy.storeFailures(), 0, 'nothing failed: the file was replaced on opening')
})

test('proxy: a store file corrupted while running is moved aside and recreated', { timeout: 60_000 }, async (t: TestContext) => {
  const { dir, defer } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  const proxy = await startProxy(t, defer, path)
  await cachesAgain(t, proxy, '/a')
  await cachesAgain(t, proxy, '/big')
  await corruptPages(path)
  const hits = proxy.origin.hits('/big')
  t.assert.equal(await proxy.get('/big'), 'MISS', 'the damaged entry is not served')
  t.assert.equal(proxy.origin.hits('/big'), hits + 1)
  await cachesAgain(t, proxy, '/big')
  await cachesAgain(t, proxy, '/b')
  t.assert.equal(corruptCopies(dir).some((file) => /corrupt-\d+$/.test(file)), true, 'moved aside')
  t.assert.equal(proxy.storeFailures() <= 1, true, 'logged at most once')
})

test('proxy: a read-only store file (chattr +i) is served uncached until writable', { timeout: 60_000 }, async (t: TestContext) => {
  const { dir, defer } = scratch(t)
  const path = join(dir, 'cache.sqlite')
  const store = await openStore(`sqlite://${path}`, FAST) // an existing, healthy file
  await store.close()
  const refused = run('chattr', '+i', path)
  if (refused !== undefined) {
    t.skip(`chattr +i is not available here: ${refused}`)
    return
  }
  defer(() => run('chattr', '-i', path))
  // Root bypasses permission bits, but not the immutable attribute: SQLite opens the file
  // read-only and every write fails with SQLITE_READONLY.
  const proxy = await startProxy(t, defer, path)
  await servedUncached(t, proxy, '/a')
  t.assert.equal(run('chattr', '-i', path), undefined)
  await cachesAgain(t, proxy, '/a')
})

test('proxy: a store on a read-only file system is served uncached until remounted read-write', { timeout: 60_000 }, async (t: TestContext) => {
  const { dir, defer } = scratch(t)
  const data = join(dir, 'data')
  const mnt = join(dir, 'mnt')
  mkdirSync(data)
  mkdirSync(mnt)
  const store = await openStore(`sqlite://${join(data, 'cache.sqlite')}`, FAST)
  await store.close()
  const refused = run('mount', '--bind', data, mnt)
  if (refused !== undefined) {
    t.skip(`cannot bind-mount here: ${refused}`)
    return
  }
  defer(() => run('umount', mnt))
  const readOnly = run('mount', '-o', 'remount,bind,ro', mnt)
  if (readOnly !== undefined) {
    t.skip(`cannot remount read-only here: ${readOnly}`)
    return
  }
  t.assert.notEqual(run('touch', join(mnt, 'probe')), undefined, 'the mount is read-only')
  const proxy = await startProxy(t, defer, join(mnt, 'cache.sqlite'))
  await servedUncached(t, proxy, '/a')
  t.assert.equal(run('mount', '-o', 'remount,bind,rw', mnt), undefined)
  await cachesAgain(t, proxy, '/a')
})

test('proxy: a full disk (small tmpfs) stores nothing, keeps serving stored entries, recovers when space frees', { timeout: 60_000 }, async (t: TestContext) => {
  const { dir, defer } = scratch(t)
  const mnt = join(dir, 'tmpfs')
  mkdirSync(mnt)
  const refused = run('mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt)
  if (refused !== undefined) {
    t.skip(`cannot mount a tmpfs here: ${refused}`)
    return
  }
  defer(() => run('umount', mnt))
  const proxy = await startProxy(t, defer, join(mnt, 'cache.sqlite'))
  await cachesAgain(t, proxy, '/a')

  // Fill the file system to the last byte.
  const filler = join(mnt, 'filler')
  const fd = openSync(filler, 'w')
  const chunk = Buffer.alloc(64 * 1024, 1)
  try {
    for (;;) writeSync(fd, chunk)
  } catch (error) {
    t.assert.equal((error as { code?: string }).code, 'ENOSPC')
  } finally {
    closeSync(fd)
  }

  await servedUncached(t, proxy, '/big')
  t.assert.equal(await proxy.get('/a'), 'HIT', 'what is stored is still served')
  rmSync(filler)
  // Nothing of the failed writes was kept: the next request stores the whole body anew.
  const hits = proxy.origin.hits('/big')
  t.assert.equal(await proxy.get('/big'), 'MISS')
  t.assert.equal(proxy.origin.hits('/big'), hits + 1)
  await cachesAgain(t, proxy, '/big')
  t.assert.equal(proxy.storeFailures(), 1)
})

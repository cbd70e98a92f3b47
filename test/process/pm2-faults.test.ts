import { test } from 'node:test'
import { createCipheriv, createHash } from 'node:crypto'
import http, { type IncomingHttpHeaders } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import KeyvSqlite from '@keyv/sqlite'
import { decodeEntry } from '../../src/cache/entry.ts'
import { tempDir } from '../helpers/app.ts'
import { startOrigin, type Origin } from '../helpers/origin.ts'
import { get, mapLimit, spawnProxy, waitUntilStored, type ProxyProcess, type Reply } from '../helpers/process.ts'
import { requestsLoggedBy, startPm2App, type Pm2Process } from '../helpers/pm2.ts'

// ---------------------------------------------------------------------------------------
// 1. PM2 restarts a worker killed with SIGKILL; the other one keeps serving meanwhile.

interface LoadResult {
  index: number
  path: string
  started: number
  ended: number
  reply?: Reply
  error?: Error
}

function describe (r: LoadResult): string {
  return `#${r.index} ${r.path} at +${r.started}..${r.ended}: ${r.error !== undefined ? r.error.message : `status ${r.reply?.status} ${r.reply?.body.slice(0, 80)}`}`
}

test('a worker killed with SIGKILL under load is restarted by PM2 while the other keeps serving', { timeout: 300_000 }, async (t) => {
  const CONCURRENCY = 3
  const MAX_REQUESTS = 4000
  const LOAD_MS = 150_000
  const KILL_AFTER = 150 // completed requests before the kill
  const TAIL = 90 // requests that must all succeed once PM2 has restarted the worker

  const cachedPaths = Array.from({ length: 20 }, (_v, i) => `/cached/${i}`)
  const routes: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void> = {
    // Uncached: every request goes through to the origin (and takes a few ms there).
    '/fresh': (req, res) => {
      setTimeout(() => {
        res.setHeader('cache-control', 'no-store')
        res.setHeader('content-type', 'text/plain')
        res.end(`fresh ${req.url}`)
      }, 3)
    }
  }
  for (const path of cachedPaths) {
    routes[path] = (_req, res) => {
      res.setHeader('cache-control', 'public, max-age=600')
      res.setHeader('content-type', 'text/plain')
      res.end(`${path} #${origin.hits(path)}`)
    }
  }
  const origin: Origin = await startOrigin(routes)
  t.after(() => origin.close())

  const app = await startPm2App(t, { WORKERS: '2' })
  const before = await app.workers()
  t.assert.deepEqual(before.map((p) => p.pm2_env.status), ['online', 'online'])
  t.assert.equal(new Set(before.map((p) => p.pid)).size, 2, 'two distinct worker processes')

  // The cached URLs are stored before the load starts: during it they are hits.
  const warm = await mapLimit(cachedPaths, 4, (path) => get(`${app.url}/${origin.host}${path}`))
  t.assert.deepEqual(warm.map((r) => r.status), cachedPaths.map(() => 200))
  await waitUntilStored(app.storeUri, cachedPaths.map((path) => `http://${origin.host}${path}`))

  const t0 = Date.now()
  const results: LoadResult[] = []
  const state = { issued: 0, stop: false, done: false }
  const deadline = t0 + LOAD_MS
  async function client (): Promise<void> {
    while (!state.stop && state.issued < MAX_REQUESTS && Date.now() < deadline) {
      const index = state.issued++
      // Two cached requests for every one that goes to the origin.
      const path = index % 3 === 0 ? `/fresh?n=${index}` : cachedPaths[index % cachedPaths.length]
      const started = Date.now() - t0
      const result: LoadResult = { index, path, started, ended: 0 }
      try {
        result.reply = await get(`${app.url}/${origin.host}${path}`, 15_000)
      } catch (error) {
        result.error = error as Error
      }
      result.ended = Date.now() - t0
      results.push(result)
    }
  }
  const load = Promise.all(Array.from({ length: CONCURRENCY }, client))
  load.finally(() => { state.done = true }).catch(() => {})

  try {
    for (let round = 0; round < 600 && results.length < KILL_AFTER && !state.done; round++) await sleep(50)
    t.assert.equal(results.length >= KILL_AFTER, true, `the load ran ${KILL_AFTER} requests before the kill (got ${results.length})`)

    // SIGKILL one worker mid-load: no graceful shutdown, no message to PM2.
    const victim = before[0]
    const killedAt = Date.now() - t0
    const issuedAtKill = state.issued
    process.kill(victim.pid, 'SIGKILL')

    // PM2 notices the exit and starts a replacement (bounded: 60 s).
    let after: Pm2Process[] = []
    let restartedAt = -1
    for (let round = 0; round < 240 && Date.now() - t0 - killedAt < 60_000; round++) {
      after = await app.workers()
      const replaced = after.find((p) => p.pm_id === victim.pm_id)
      if (after.length === 2 && after.every((p) => p.pm2_env.status === 'online' && p.pid > 0) &&
          replaced !== undefined && replaced.pid !== victim.pid && replaced.pm2_env.restart_time >= 1) {
        restartedAt = Date.now() - t0
        break
      }
      await sleep(250)
    }
    t.assert.equal(restartedAt > 0, true, `PM2 restarted the killed worker within 60 s; jlist: ${JSON.stringify(after.map((p) => ({ id: p.pm_id, pid: p.pid, status: p.pm2_env.status, restarts: p.pm2_env.restart_time })))}`)
    const issuedAtRestart = state.issued

    // Keep the load going until TAIL requests issued after the restart have finished.
    for (let round = 0; round < 1200 && !state.done && results.filter((r) => r.index >= issuedAtRestart).length < TAIL; round++) await sleep(50)
    state.stop = true
    await load

    const replaced = after.find((p) => p.pm_id === victim.pm_id) as Pm2Process
    const survivor = after.find((p) => p.pm_id !== victim.pm_id) as Pm2Process
    const failures = results.filter((r) => r.error !== undefined || r.reply?.status !== 200)
    const servedMeanwhile = results.filter((r) => r.index >= issuedAtKill && r.ended <= restartedAt && r.reply?.status === 200).length
    // The survivor's own log: the requests it answered between the kill and the restart.
    let survivorServed = 0
    for (let round = 0; round < 100 && survivorServed === 0; round++) {
      survivorServed = requestsLoggedBy(survivor.pm2_env.pm_out_log_path, survivor.pid, undefined, t0 + killedAt, t0 + restartedAt)
      if (survivorServed === 0) await sleep(100) // PM2 writes the logs asynchronously
    }
    t.diagnostic(`${results.length} requests, ${CONCURRENCY} clients; worker pm_id ${victim.pm_id} pid ${victim.pid} killed at +${killedAt} ms, ` +
      `restart seen at +${restartedAt} ms (new pid ${replaced.pid}, restart_time ${replaced.pm2_env.restart_time}); ` +
      `${servedMeanwhile} requests answered 200 in between, ${survivorServed} of them logged by the surviving worker; ${failures.length} failed`)
    for (const failure of failures) t.diagnostic(`failed: ${describe(failure)}`)

    // At most the requests in flight on the killed worker can fail: no more than one per client.
    // (One whose connection the cluster primary was handing to the worker as it died gets
    // no answer at all, so it fails by the client's timeout: Node's cluster, not the app.)
    // The requests in flight on the killed worker fail; so, at most once, can a connection the
    // cluster primary was handing to it at that instant (a node:cluster race, see README).
    t.assert.equal(failures.length <= CONCURRENCY + 1, true, `at most ${CONCURRENCY + 1} failures, got ${failures.length}:\n${failures.map(describe).join('\n')}`)
    // They failed around the kill, not later.
    t.assert.deepEqual(failures.filter((r) => r.index >= issuedAtRestart).map(describe), [], 'no failure after the restart')
    t.assert.deepEqual(failures.filter((r) => r.ended < killedAt).map(describe), [], 'no failure before the kill')
    t.assert.equal(survivorServed > 0, true, 'the surviving worker answered while the other was being restarted')

    // The load succeeds afterwards: the last TAIL requests (all issued after the restart) are 200.
    const tail = [...results].sort((a, b) => a.index - b.index).slice(-TAIL)
    t.assert.equal(tail.length, TAIL)
    t.assert.equal(tail.every((r) => r.index >= issuedAtRestart), true, 'the tail was issued after the restart')
    t.assert.deepEqual(tail.filter((r) => r.reply?.status !== 200).map(describe), [])

    // Every success carried the right body; cached URLs stayed hits (from the shared store
    // in the new worker too) and never went back to the origin.
    const wrong = results.filter((r) => {
      if (r.reply?.status !== 200) return false
      if (r.path.startsWith('/fresh')) return r.reply.body !== `fresh ${r.path}` || r.reply.headers['x-cache'] !== 'MISS'
      return r.reply.body !== `${r.path} #1` || r.reply.headers['x-cache'] !== 'HIT'
    })
    t.assert.deepEqual(wrong.map(describe), [])
    t.assert.deepEqual(cachedPaths.map((path) => origin.hits(path)), cachedPaths.map(() => 1))

    // Both workers are online with distinct pids, and the replacement takes traffic.
    const now = await app.workers()
    t.assert.deepEqual(now.map((p) => p.pm2_env.status), ['online', 'online'])
    t.assert.equal(now.find((p) => p.pm_id === victim.pm_id)?.pm2_env.restart_time !== undefined &&
      (now.find((p) => p.pm_id === victim.pm_id)?.pm2_env.restart_time ?? 0) >= 1, true, 'restart count >= 1')
    t.assert.equal(now.find((p) => p.pm_id === survivor.pm_id)?.pid, survivor.pid, 'the other worker was not restarted')
    t.assert.equal(survivor.pid, before[1].pid, 'the survivor is the worker that was not killed')
    const tailUrls = new Set(tail.map((r) => `http://${origin.host}${r.path}`))
    let servedByReplacement = 0
    for (let round = 0; round < 100 && servedByReplacement === 0; round++) {
      servedByReplacement = requestsLoggedBy(replaced.pm2_env.pm_out_log_path, replaced.pid, tailUrls)
      if (servedByReplacement === 0) await sleep(100) // PM2 writes the logs asynchronously
    }
    t.diagnostic(`the replacement worker answered ${servedByReplacement} of the last ${TAIL} requests`)
    t.assert.equal(servedByReplacement > 0, true, 'the restarted worker answers requests')
  } finally {
    state.stop = true
    await load
  }
})

// ---------------------------------------------------------------------------------------
// 2. A SIGKILL at any moment of the store writes leaves whole entries or none.

const KIB = 1024
const MIN_BODY = 200 * KIB
const MAX_BODY = 2048 * KIB

/** The origin's body for `path`: 200 KiB to 2 MiB of pseudo-random bytes, derived from the path alone. */
function bodyFor (path: string): Buffer {
  const seed = createHash('sha256').update(path).digest()
  const size = MIN_BODY + (seed.readUInt32BE(0) % (MAX_BODY - MIN_BODY + 1))
  const cipher = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16))
  return cipher.update(Buffer.alloc(size))
}

interface BinaryReply {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

/** One GET on a fresh connection, body kept as bytes. */
function getBytes (url: string, timeoutMs = 60_000): Promise<BinaryReply> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}

/** Lines of a process's output that show a store failure, an undecodable entry, or any error-level line. */
function troubleLines (proxy: ProxyProcess): string[] {
  return proxy.output().split('\n').filter((line) => {
    if (/SQLITE_|cache store failed|database is locked|cannot be decoded|EntryDecodeError/i.test(line)) return true
    try {
      return ((JSON.parse(line) as { level?: number }).level ?? 0) >= 50
    } catch {
      return false
    }
  })
}

interface FileCheck {
  /** upstream URLs stored whole (all rows, every round so far) */
  stored: Set<string>
  problems: string[]
}

/** Reads every row of the SQLite file as it is after a crash and checks it against the origin's bytes. */
async function checkFile (file: string, originHost: string): Promise<FileCheck> {
  const db = new KeyvSqlite({ uri: `sqlite://${file}`, table: 'entries', busyTimeout: 5000 })
  const stored = new Set<string>()
  const problems: string[] = []
  try {
    const integrity = await db.query('PRAGMA integrity_check') as Array<{ integrity_check: string }>
    if (integrity.map((r) => r.integrity_check).join(',') !== 'ok') problems.push(`integrity_check: ${JSON.stringify(integrity)}`)
    const rows = await db.query('SELECT key, value FROM entries') as Array<{ key: string, value: unknown }>
    for (const row of rows) {
      let url: string
      try {
        const entry = decodeEntry(row.value)
        url = entry.url
        if (row.key !== `GET ${entry.url}`) throw new Error(`stored under ${row.key} but names ${entry.url}`)
        const parsed = new URL(entry.url)
        if (parsed.host !== originHost) throw new Error(`unexpected upstream ${entry.url}`)
        if (entry.status !== 200) throw new Error(`status ${entry.status}`)
        const expected = bodyFor(parsed.pathname)
        if (!entry.body.equals(expected)) throw new Error(`body of ${entry.body.length} bytes differs from the origin's ${expected.length}`)
        if (entry.headers['content-length'] !== undefined && Number(entry.headers['content-length']) !== expected.length) {
          throw new Error(`content-length ${String(entry.headers['content-length'])}, body ${expected.length}`)
        }
      } catch (error) {
        problems.push(`${row.key}: ${(error as Error).message}`)
        continue
      }
      stored.add(url)
    }
    // The sizes the triggers keep are written in the same statement as the value.
    const meta = await db.query(`SELECT COUNT(*) AS n FROM entries e LEFT JOIN entry_meta m ON m.key = e.key
      WHERE m.key IS NULL OR m.size <> octet_length(e.value)`) as Array<{ n: number }>
    if (Number(meta[0]?.n) !== 0) problems.push(`${meta[0]?.n} entries without a matching entry_meta row`)
    const orphans = await db.query('SELECT COUNT(*) AS n FROM entry_meta m WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.key = m.key)') as Array<{ n: number }>
    if (Number(orphans[0]?.n) !== 0) problems.push(`${orphans[0]?.n} entry_meta rows without an entry`)
    const totals = await db.query(`SELECT t.entries AS entries, t.bytes AS bytes, (SELECT COUNT(*) FROM entries) AS count,
      (SELECT COALESCE(SUM(octet_length(value)), 0) FROM entries) AS sum FROM store_totals t WHERE t.id = 0`) as Array<{ entries: number, bytes: number, count: number, sum: number }>
    const tot = totals[0]
    if (tot === undefined || Number(tot.entries) !== Number(tot.count) || Number(tot.bytes) !== Number(tot.sum)) {
      problems.push(`store_totals ${JSON.stringify(tot)} do not match the entries`)
    }
  } finally {
    await db.disconnect()
  }
  return { stored, problems }
}

test('an entry is either stored whole or not at all, whatever is killed when', { timeout: 600_000 }, async (t) => {
  const ROUNDS = 4
  const URLS = 120 // per round
  const CONCURRENCY = 6
  // Where in the run each round's kill falls: after this fraction of the responses, plus 0-25 ms.
  const KILL_WINDOWS: Array<[number, number]> = [[0.05, 0.25], [0.25, 0.5], [0.5, 0.7], [0.7, 0.85]]
  const LEASE_MS = 6000 // UPSTREAM_TIMEOUT_MS + 1 s: how long a dead process's leases hold others back

  const dir = tempDir(t)
  const file = join(dir, 'cache.sqlite')
  const env = {
    CACHE_STORE: `sqlite://${file}`,
    MAX_CACHE_BYTES: String(8 * 1024 ** 3), // no eviction in the way of the counts
    UPSTREAM_TIMEOUT_MS: String(LEASE_MS - 1000)
  }

  // Routes are matched by the exact path; register every round's paths up front.
  const allPaths: string[][] = Array.from({ length: ROUNDS }, (_v, r) => Array.from({ length: URLS }, (_w, i) => `/r${r}/blob-${i}`))
  const bodyOrigin = await startOrigin(Object.fromEntries(allPaths.flat().map((path) => [path, (_req: http.IncomingMessage, res: http.ServerResponse) => {
    const body = bodyFor(path)
    res.setHeader('cache-control', 'public, max-age=3600')
    res.setHeader('content-type', 'application/octet-stream')
    res.setHeader('content-length', body.length)
    res.end(body)
  }])))
  t.after(() => bodyOrigin.close())

  let victim = await spawnProxy(t, env, dir)
  let cutRounds = 0
  for (let round = 0; round < ROUNDS; round++) {
    const paths = allPaths[round]
    const urls = paths.map((path) => `http://${bodyOrigin.host}${path}`)
    const [low, high] = KILL_WINDOWS[round % KILL_WINDOWS.length]
    const killAfter = Math.max(1, Math.round(URLS * (low + Math.random() * (high - low))))
    const jitterMs = Math.floor(Math.random() * 26)

    // Load: CONCURRENCY clients on fresh connections; after `killAfter` whole responses
    // (+ jitter) the process gets SIGKILL, whatever it is writing.
    const proxy = victim
    const exited = new Promise<void>((resolve) => {
      if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) resolve()
      else proxy.child.once('exit', () => resolve())
    })
    const state = { next: 0, completed: 0, killed: false, killedAtCompleted: 0, fetchedAtKill: 0 }
    // How many of the round's URLs the proxy has asked the origin for (each one once, before the check).
    const fetched = (): number => paths.filter((path) => bodyOrigin.hits(path) > 0).length
    let killTimer: Promise<void> | undefined
    const started = Date.now()
    async function client (): Promise<void> {
      while (!state.killed && state.next < paths.length && Date.now() - started < 120_000) {
        const path = paths[state.next++]
        try {
          const reply = await getBytes(`${proxy.url}/${bodyOrigin.host}${path}`)
          if (reply.status === 200 && reply.body.equals(bodyFor(path))) state.completed++
        } catch {
          // The process died under this request.
        }
        if (state.completed >= killAfter && killTimer === undefined) {
          killTimer = sleep(jitterMs).then(() => {
            state.killedAtCompleted = state.completed
            state.fetchedAtKill = fetched()
            state.killed = true
            proxy.child.kill('SIGKILL')
          })
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, client))
    if (killTimer === undefined) {
      state.killedAtCompleted = state.completed
      state.fetchedAtKill = fetched()
      state.killed = true
      proxy.child.kill('SIGKILL')
    }
    await killTimer
    await Promise.race([exited, sleep(15_000)])
    t.assert.equal(proxy.child.signalCode, 'SIGKILL', `round ${round}: the proxy died of SIGKILL`)

    // The file as the crash left it: every row whole and equal to the origin's bytes.
    const check = await checkFile(file, bodyOrigin.host)
    t.assert.deepEqual(check.problems, [], `round ${round}: every stored row is a whole entry`)
    const storedNow = urls.filter((url) => check.stored.has(url))
    t.diagnostic(`round ${round}: killed ${Date.now() - started} ms in, after ${state.killedAtCompleted} of ${URLS} whole responses (+${jitterMs} ms), ` +
      `${state.fetchedAtKill} requested from the origin; ${storedNow.length} of the round's entries stored, ${check.stored.size} rows in the file`)
    t.assert.equal(storedNow.length < URLS, true, `round ${round}: the kill came before every write was done`)
    // Responses the proxy was fetching (some even delivered) whose entries are not in the
    // file: the kill cut off their bodies or their writes.
    if (storedNow.length < state.fetchedAtKill) cutRounds++

    // A new process on the same file: hits for the stored entries, misses (200) for the rest.
    const originBefore = new Map(paths.map((path) => [path, bodyOrigin.hits(path)]))
    const next = await spawnProxy(t, env, dir)
    const verifyStarted = Date.now()
    const replies = await mapLimit(paths, CONCURRENCY, async (path, i) => {
      const began = Date.now()
      const reply = await getBytes(`${next.url}/${bodyOrigin.host}${path}`, 120_000)
      return { path, url: urls[i], reply, ms: Date.now() - began }
    })
    const slowest = Math.max(...replies.map((r) => r.ms))
    const held = replies.filter((r) => r.ms > 1000).length
    t.diagnostic(`round ${round}: the next process answered ${URLS} requests in ${Date.now() - verifyStarted} ms ` +
      `(slowest ${slowest} ms; ${held} took over 1 s: URLs the dead process was fetching wait for its leases to expire)`)
    const wrong = replies.filter(({ url, reply }) => reply.status !== 200 || reply.headers['x-cache'] !== (check.stored.has(url) ? 'HIT' : 'MISS'))
    t.assert.deepEqual(wrong.map(({ path, url, reply }) => `${path}: ${reply.status} x-cache ${String(reply.headers['x-cache'])}, stored ${check.stored.has(url)}`), [])
    t.assert.deepEqual(replies.filter(({ path, reply }) => !reply.body.equals(bodyFor(path))).map(({ path }) => path), [], 'every body is the origin\'s')
    t.assert.deepEqual(replies.filter(({ path, url }) => check.stored.has(url) && bodyOrigin.hits(path) !== originBefore.get(path)).map(({ path }) => path), [],
      'stored entries were not fetched again')
    // A dead process's leases hold a request back at most until they expire.
    t.assert.equal(slowest < LEASE_MS + 20_000, true, `slowest request ${slowest} ms`)
    t.assert.deepEqual(troubleLines(next), [], `round ${round}: the next process logged no store or decode error`)
    victim = next // and it is the one killed in the next round
  }
  t.diagnostic(`in ${cutRounds} of ${ROUNDS} rounds the kill cut off responses on their way to the store`)
  t.assert.equal(cutRounds > 0, true, 'some kill landed while entries were being written')

  // The last process stops cleanly, and the file is still whole.
  await victim.stop()
  t.assert.equal(victim.child.exitCode, 0, victim.output())
  const final = await checkFile(file, bodyOrigin.host)
  t.assert.deepEqual(final.problems, [])
  t.assert.equal(final.stored.size, ROUNDS * URLS, 'every URL of every round is stored whole in the end')
})

/**
 * Hits spread over 100,000 stored entries (issue #13): SQLite reads, since the memory tier
 * cannot hold them all. The store file is filled through SQLite directly (one transaction,
 * seconds instead of minutes through the proxy) with copies of a response the proxy itself
 * stored, each under the key the proxy gives its URL; then wrk asks for seeded random URLs
 * among them. One proxy process per variant: the default memory tier (64 MiB, about half
 * the entries) and none at all (MEMORY_CACHE_BYTES=0: every hit reads the file).
 * BENCH_ONLY word: `random`. Loopback only; every process is stopped by PID (processes.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sqlite3 from 'sqlite3'
import { decodeEntry, encodeEntry } from '../src/cache/entry.ts'
import { get, sleep } from './probe.ts'
import { startProxy, stopChild } from './processes.ts'
import { fmt, median, table } from './stats.ts'
import { load, type Load } from './wrk.ts'

export const ENTRY_COUNT = 100_000
const TEMPLATE = 'template'
const FILL_BATCH = 1000

export interface Build { name: string, script?: string }
export interface RandomHitsRow { name: string, rps: number, p50: number, p99: number, cpuUsPerRequest: number, errors: number, notHits: number }

/** A wrk Lua script asking for `<path>r-<n>`, n uniformly random in 1..count from a fixed seed. */
export function randomUrlScript (seed: number, count: number): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'caching-proxy-wrk-')), 'random.lua')
  writeFileSync(file, `math.randomseed(${seed})\nrequest = function()\n  return wrk.format(nil, wrk.path .. "r-" .. math.random(1, ${count}))\nend\n`)
  return file
}

function run (db: sqlite3.Database, sql: string, ...params: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => db.run(sql, params, (error) => { if (error === null) resolve(); else reject(error) }))
}

function row (db: sqlite3.Database, sql: string, ...params: unknown[]): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve, reject) => db.get(sql, params, (error, found) => { if (error === null) resolve(found as Record<string, unknown> | undefined); else reject(error) }))
}

/**
 * Makes the proxy store `<base>/template`, then writes `count` copies of that row as
 * `<base>/r-1` ... `<base>/r-<count>` (url inside the entry changed too). The triggers of the
 * store's schema keep sizes and totals. Returns the fill time in ms.
 */
export async function fillStore (file: string, base: string, count: number): Promise<number> {
  await get(base + TEMPLATE)
  const second = await get(base + TEMPLATE)
  if (String(second.headers['x-cache']) !== 'HIT') throw new Error(`template not stored: x-cache ${String(second.headers['x-cache'])}`)
  const started = Date.now()
  const db = new sqlite3.Database(file)
  db.configure('busyTimeout', 5000)
  try {
    let template: Record<string, unknown> | undefined
    for (let i = 0; i < 100 && template === undefined; i++) {
      template = await row(db, 'SELECT key, value FROM entries WHERE key LIKE ?', `%/${TEMPLATE}`)
      if (template === undefined) await sleep(50) // the write follows the response
    }
    if (template === undefined) throw new Error(`the proxy did not store ${base}${TEMPLATE} in ${file}`)
    const key = String(template.key)
    const entry = decodeEntry(template.value)
    // Batches of rows as JSON [key, hex value] pairs: a statement per row would take minutes.
    await run(db, 'BEGIN')
    for (let first = 1; first <= count; first += FILL_BATCH) {
      const rows = []
      for (let n = first; n < first + FILL_BATCH && n <= count; n++) {
        const name = `r-${n}`
        rows.push([key.replace(TEMPLATE, name), encodeEntry({ ...entry, url: entry.url.replace(TEMPLATE, name) }).toString('hex')])
      }
      await run(db, `INSERT INTO entries (key, value) SELECT value ->> 0, unhex(value ->> 1) FROM json_each(?) WHERE true
        ON CONFLICT (key) DO UPDATE SET value = excluded.value`, JSON.stringify(rows))
    }
    await run(db, 'COMMIT')
  } finally {
    await new Promise((resolve) => db.close(resolve))
  }
  return Date.now() - started
}

/** Fills one store per build and variant, then interleaved rounds of seeded random hits; prints and returns the medians. */
export async function benchRandomHits (tmpDir: string, originPort: number, rounds: number, seconds: number, builds: Build[] = [{ name: 'proxy' }]): Promise<RandomHitsRow[]> {
  const seed = Number(process.env.BENCH_SEED ?? 13)
  const variants: Array<{ name: string, env: Record<string, string> }> = [{ name: 'memory tier 64 MiB', env: {} }, { name: 'store reads only', env: { MEMORY_CACHE_BYTES: '0' } }]
  const targets = []
  for (const build of builds) {
    for (const variant of variants) {
      const name = builds.length > 1 ? `${build.name}, ${variant.name}` : variant.name
      const file = path.join(tmpDir, `random-${targets.length}.sqlite`)
      const proxy = await startProxy(tmpDir, { CACHE_STORE: `sqlite://${file}`, ...variant.env }, build.script)
      const base = `http://127.0.0.1:${proxy.port}/127.0.0.1:${originPort}/fill/`
      const ms = await fillStore(file, base, ENTRY_COUNT)
      // Every sampled URL must be a hit: the fill wrote the keys the proxy looks up.
      let notHits = 0
      for (let i = 0; i < 20; i++) {
        const got = await get(`${base}r-${1 + Math.floor(Math.random() * ENTRY_COUNT)}`)
        if (got.status !== 200 || String(got.headers['x-cache']) !== 'HIT') { notHits++; if (notHits === 1) console.error(`  random: ${name}: ${got.status} x-cache ${String(got.headers['x-cache'])} ${got.body.toString('utf8', 0, 200)}`) }
      }
      if (notHits > 0) throw new Error(`${name}: ${notHits} of 20 sampled URLs were not hits`)
      console.error(`  random: ${name}: ${ENTRY_COUNT} entries written in ${fmt(ms)} ms`)
      targets.push({ name, proxy, base, loads: [] as Load[] })
    }
  }
  const script = randomUrlScript(seed, ENTRY_COUNT)
  try {
    for (const t of targets) await load(t.base, 1, t.proxy.child, script) // warm-up
    for (let round = 0; round < rounds; round++) {
      for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
        const l = await load(t.base, seconds, t.proxy.child, script)
        t.loads.push(l)
        console.error(`  random round ${round + 1}/${rounds}: ${t.name} ${fmt(l.rps)} req/s ${fmt(l.cpuUsPerRequest, 1)} µs/req (machine ${fmt(l.machineBusy)}%)`)
      }
    }
  } finally {
    for (const t of targets) await stopChild(t.proxy.child)
  }
  const rows = targets.map((t) => ({
    name: t.name,
    rps: median(t.loads.map((l) => l.rps)),
    p50: median(t.loads.map((l) => l.p50)),
    p99: median(t.loads.map((l) => l.p99)),
    cpuUsPerRequest: median(t.loads.map((l) => l.cpuUsPerRequest ?? NaN)),
    errors: t.loads.reduce((n, l) => n + l.errors + l.timeouts, 0),
    notHits: t.loads.reduce((n, l) => n + l.non2xx, 0)
  }))
  console.log(`\nrandom hits over ${ENTRY_COUNT.toLocaleString('en-US')} stored 1 KiB entries, one process (seed ${seed}; medians of ${rounds} round(s) x ${seconds} s)`)
  console.log(table(['store', 'req/s', 'p50 ms', 'p99 ms', 'µs CPU/req', 'errors', 'non-2xx'],
    rows.map((r) => [r.name, fmt(r.rps), fmt(r.p50, 1), fmt(r.p99, 1), fmt(r.cpuUsPerRequest, 1), String(r.errors), String(r.notHits)])))
  return rows
}

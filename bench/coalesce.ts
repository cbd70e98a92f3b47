/**
 * Coalescing across PM2 workers (issue #13): 2 workers in cluster mode under a private PM2
 * daemon (PM2_HOME in the run's temp dir), one SQLite store, an origin that answers after
 * 200 ms; bursts of 100 simultaneous cold requests (new connections, so PM2 spreads them over
 * both workers) for a fresh URL each. Reports the client p50/max per burst, the origin hits,
 * and the same burst sent straight to the origin (the client's own floor), medians of rounds.
 * Each target's first burst after start (JIT still cold: 60-100 ms slower here) is reported
 * apart (`first`), not in the medians: a proxy in service is warm.
 *
 *   node --import tsx bench/coalesce.ts [dist A] [dist B]   interleaved A/B of two builds
 *
 * A dist given on the command line must be able to resolve the project's packages (a dist
 * built inside the project, or beside a node_modules link and a {"type":"module"} package.json).
 */
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { cleanup, forkServer, freePort, here, makeTmpDir } from './processes.ts'
import { pm2Daemon, type Pm2Daemon } from './pm2-proxy.ts'
import { get, sleep, type Got } from './probe.ts'
import { fmt, median, percentile } from './stats.ts'

const BURST = 100
const REQUEST_TIMEOUT_MS = 10_000

export interface CoalesceRound { p50: number, max: number, originHits: number, failed: number, ok: number, groups?: string, remoteLag?: number }
export interface CoalesceResult {
  name: string
  rounds: CoalesceRound[]
  p50: number
  max: number
  originHits: number
  /** Median over rounds of remoteLag. */
  remoteLag: number
  /** Median over rounds of this p50 minus the same round's direct-to-origin p50 (less noisy than p50). */
  overFloor: number
  /** The p50 of the first burst after start, left out of the medians. */
  first: number
}

/** Starts `dist`/src/server.js as 2 PM2 workers on a free port with its own SQLite file; the base URL. */
async function startWorkers (daemon: Pm2Daemon, dist: string, dir: string, name: string): Promise<string> {
  const port = await freePort()
  const env = {
    PORT: String(port),
    HOST: '127.0.0.1',
    CACHE_STORE: `sqlite://${path.join(dir, `${name}.sqlite`)}`,
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    ALLOW_PRIVATE_UPSTREAMS: 'true',
    UPSTREAM_PORTS: '*',
    WORKERS: '2',
    NODE_ENV: 'production'
  }
  const script = path.resolve(dist, 'src', 'server.js')
  const args = ['start', script, '--name', name, '-i', '2', '--no-autorestart', '--no-pmx', '--cwd', dir]
  // `pm2 start <script>` gives the app the CLI's own environment.
  const saved = { ...process.env }
  Object.assign(process.env, env)
  try {
    await daemon.pm2(...args)
  } finally {
    for (const key of Object.keys(env)) {
      if (saved[key] === undefined) Reflect.deleteProperty(process.env, key)
      else process.env[key] = saved[key]
    }
  }
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    try { await get(`${url}/`, 1000); return url } catch { await sleep(200) }
  }
  throw new Error(`${name}: PM2 workers did not answer within 30 s`)
}

async function burst (url: (i: number) => string): Promise<{ got: Got[], failed: number }> {
  const results = await Promise.allSettled(Array.from({ length: BURST }, async (_, i) => await get(url(i), REQUEST_TIMEOUT_MS)))
  const got = results.filter((r): r is PromiseFulfilledResult<Got> => r.status === 'fulfilled').map((r) => r.value)
  return { got, failed: results.length - got.length }
}

/** Latency by answer kind (Cache-Status): who was the leader, who waited in which worker. */
function groups (got: Got[]): string {
  const by = new Map<string, number[]>()
  for (const g of got) {
    const label = String(g.headers['cache-status'] ?? g.headers['x-cache'] ?? '-').replace(/caching-proxy; ?/g, '').replace(/;ttl=\d+/g, '')
    by.set(label, [...(by.get(label) ?? []), g.ms])
  }
  return [...by].map(([label, ms]) => `${label} x${ms.length} p50 ${fmt(percentile(ms, 50))} (${fmt(Math.min(...ms))}-${fmt(Math.max(...ms))})`).join('; ')
}

/**
 * How much later the other worker's requests were answered than the leader's worker's
 * (p50 against p50, ms): the cost of waiting through the store, less noisy than p50 itself.
 * A Cache-Status with fwd-status was forwarded in the leader's worker (RFC 9211).
 */
function remoteLag (got: Got[]): number {
  const leaders = got.filter((g) => String(g.headers['cache-status'] ?? '').includes('fwd-status')).map((g) => g.ms)
  const remote = got.filter((g) => !String(g.headers['cache-status'] ?? '').includes('fwd-status')).map((g) => g.ms)
  return remote.length === 0 || leaders.length === 0 ? NaN : percentile(remote, 50) - percentile(leaders, 50)
}

async function originCount (originPort: number, pathAndQuery: string): Promise<number> {
  const stats = JSON.parse((await get(`http://127.0.0.1:${originPort}/stats`)).body.toString('utf8')) as Record<string, number>
  return stats[pathAndQuery] ?? 0
}

function summarise (name: string, rounds: CoalesceRound[], floor: CoalesceRound[], first: number): CoalesceResult {
  return {
    first,
    remoteLag: median(rounds.map((r) => r.remoteLag ?? NaN).filter((x) => !Number.isNaN(x))),
    overFloor: median(rounds.map((r, i) => r.p50 - (floor[i]?.p50 ?? NaN))),
    name,
    rounds,
    p50: median(rounds.map((r) => r.p50)),
    max: median(rounds.map((r) => r.max)),
    originHits: Math.max(0, ...rounds.map((r) => r.originHits))
  }
}

/**
 * Interleaved bursts against each build in `dists` (2 PM2 workers each) and straight to the
 * origin; `rounds` bursts each. Every process started here is stopped before it returns.
 */
export async function benchCoalesce (tmpDir: string, originPort: number, dists: Record<string, string>, rounds: number): Promise<CoalesceResult[]> {
  const daemon = pm2Daemon(path.join(tmpDir, 'pm2-coalesce'))
  try {
    const targets: Array<{ name: string, base: string }> = []
    for (const [name, dist] of Object.entries(dists)) targets.push({ name, base: await startWorkers(daemon, dist, tmpDir, `cpx-coalesce-${name}`) })
    const byName = new Map<string, CoalesceRound[]>([['origin direct', []], ...targets.map((t) => [t.name, []] as [string, CoalesceRound[]])])
    const firsts = new Map<string, number>()
    for (let round = -1; round < rounds; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse()
      const record = (name: string, result: CoalesceRound): void => {
        if (round < 0) firsts.set(name, result.p50)
        else byName.get(name)?.push(result)
      }
      for (const target of order) {
        const slowPath = `/slow?k=${randomUUID()}`
        const { got, failed } = await burst(() => `${target.base}/127.0.0.1:${originPort}${slowPath}`)
        const ok = got.filter((g) => g.status === 200 && g.body.toString('utf8') === `slow ${slowPath}\n`)
        const ms = got.map((g) => g.ms)
        record(target.name, { p50: percentile(ms, 50), max: Math.max(...ms), originHits: await originCount(originPort, slowPath), failed, ok: ok.length, groups: groups(got), remoteLag: remoteLag(got) })
        await sleep(300)
      }
      const direct = await burst((i) => `http://127.0.0.1:${originPort}/slow?k=${randomUUID()}-${i}`)
      const ms = direct.got.map((g) => g.ms)
      record('origin direct', { p50: percentile(ms, 50), max: Math.max(...ms), originHits: BURST - direct.failed, failed: direct.failed, ok: direct.got.length })
      await sleep(300)
    }
    return [...byName].map(([name, r]) => summarise(name, r, byName.get('origin direct') ?? [], firsts.get(name) ?? NaN))
  } finally {
    await daemon.stop()
  }
}

export function printCoalesce (results: CoalesceResult[]): void {
  console.log(`\ncoalescing across 2 PM2 workers (SQLite store): ${BURST} simultaneous cold requests, origin answers after 200 ms; medians of ${results[0]?.rounds.length ?? 0} interleaved bursts`)
  for (const r of results) {
    const okAll = r.rounds.every((x) => x.ok === BURST && x.failed === 0)
    console.log(`  ${r.name.padEnd(16)} p50 ${fmt(r.p50)} ms (${fmt(r.overFloor)} ms over the direct burst of the same round; other worker ${fmt(r.remoteLag)} ms behind the leader's), max ${fmt(r.max)} ms, origin hits per burst ≤ ${r.originHits}` +
      `; first burst after start p50 ${fmt(r.first)} ms (not in the medians)${okAll ? '' : ' (SOME ANSWERS FAILED OR WRONG)'}; per burst p50: ${r.rounds.map((x) => fmt(x.p50)).join(' ')}`)
    if (process.env.BENCH_DETAIL === '1') for (const x of r.rounds) if (x.groups !== undefined) console.log(`    ${x.groups}`)
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.join(here, 'coalesce.ts')) {
  const dists = process.argv.slice(2)
  const named = dists.length === 0 ? { current: path.join(here, '..', 'dist') } : Object.fromEntries(dists.map((d, i) => [String.fromCharCode(65 + i), d]))
  const main = async (): Promise<void> => {
    const tmpDir = makeTmpDir()
    const origin = await forkServer('origin.ts')
    printCoalesce(await benchCoalesce(tmpDir, origin.port, named, Number(process.env.BENCH_ROUNDS ?? 5)))
  }
  main().then(async () => { await cleanup(); process.exit(0) }, async (error: unknown) => { console.error(error); await cleanup(); process.exit(1) })
}

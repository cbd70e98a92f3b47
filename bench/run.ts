/**
 * Benchmark, with wrk (autocannon when wrk is missing): the proxy's cache hits beside a bare
 * Fastify serving the same bytes, uncacheable (no-store) misses and store fill beside a
 * reply-from passthrough (bench/passthrough.ts), each with server CPU per request, plus a
 * coalescing probe. Run with `npm run bench` (builds first). Every server and every load
 * generator runs in its own child process; all traffic stays on 127.0.0.1.
 *
 *   npm run bench                      text report on stdout
 *   npm run bench -- --json            ... followed by a JSON summary on stdout
 *   npm run bench -- --json out.json   ... and the JSON summary written to out.json
 *
 * BENCH_ROUNDS (1-10, default 3) and BENCH_SECONDS (1-10, default 3) shorten or lengthen the load;
 * BENCH_ONLY=1k,miss (words of the scenario names: 1k 64k 1m hit miss cold fill stores anchors cluster log coalesce gib rss random fast profile) runs only those
 * (profile, the V8 profile of a store fill, runs only when named);
 * `anchors` (nginx and Varnish on the same hits) runs when they are installed: apt-get install -y nginx varnish.
 */
import { createHash, randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { makeBodies, SIZES } from './bodies.ts'
import { measureGenerationCheck } from './generation.ts'
import { measureLogCost } from './log-cost.ts'
import { benchPm2LogCost, printPm2LogCost } from './pm2-log-cost.ts'
import { missScenarios } from './miss.ts'
import { CONNECTIONS, machineTicks } from './load-run.ts'
import { compare, type Compared, type Target } from './compare.ts'
import { printResults } from './report.ts'
import { haveWrk } from './wrk.ts'
import { get, sleep, type Got } from './probe.ts'
import { cleanup, forkServer, here, makeTmpDir, startProxy, wasInterrupted } from './processes.ts'
import { fmt, percentile } from './stats.ts'
import { benchStores } from './stores.ts'
import { startAnchors } from './anchors.ts'
import { printAnchors } from './report.ts'
import { benchBigBody, printBigBody } from './big-body.ts'
import { benchCoalesce, printCoalesce } from './coalesce.ts'
import { benchMemoryRss, printMemoryRss } from './memory-rss.ts'
import { benchCluster, printCluster } from './cluster.ts'
import { benchRandomHits } from './random-hits.ts'
import { benchFastHits, printFastHits } from './fast-hits.ts'
import { benchFillProfile, printFillProfile } from './fill-profile.ts'

const ROUNDS = boundedEnv('BENCH_ROUNDS', 3, 1, 10)
const SECONDS = boundedEnv('BENCH_SECONDS', 3, 1, 10)
const WARMUP_SECONDS = 1
const PROBE_REQUESTS = 100
const TOTAL_BUDGET_MS = 600_000 // load rounds are skipped past this, so the run stays bounded
const PATHS = Object.keys(SIZES)

const ONLY = (process.env.BENCH_ONLY ?? '').split(',').map((w) => w.trim()).filter((w) => w !== '')
function wanted (label: string): boolean {
  return ONLY.length === 0 || ONLY.some((word) => label.split(/[\s/]+/).includes(word))
}

function boundedEnv (name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name}: expected an integer ${min}-${max}`)
  return value
}

// ---------------------------------------------------------------------------------------------
// Main

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const jsonIndex = args.indexOf('--json')
  const wantJson = jsonIndex !== -1
  const jsonPath = wantJson && args[jsonIndex + 1] !== undefined && !args[jsonIndex + 1].startsWith('--')
    ? path.resolve(args[jsonIndex + 1])
    : undefined
  const started = Date.now()

  const cpus = os.cpus()
  const machine = {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100)
  }
  console.log('caching-proxy benchmark')
  const idleBefore = machineTicks()
  await sleep(1000)
  const idleAfter = machineTicks()
  const backgroundBusy = idleBefore === null || idleAfter === null || idleAfter.total === idleBefore.total
    ? null
    : (idleAfter.busy - idleBefore.busy) / (idleAfter.total - idleBefore.total) * 100
  console.log(`machine: node ${machine.node}, ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.platform}, ` +
    `${machine.memoryGiB} GiB, loadavg ${machine.loadavg.join(' ')}, ` +
    `busy before start ${fmt(backgroundBusy)}% of all cores (other work on the machine skews every figure)`)
  console.log(`load: ${haveWrk() ? `wrk -t1 -c${CONNECTIONS} --latency` : `autocannon -c ${CONNECTIONS}`}, ${ROUNDS} interleaved rounds x ${SECONDS} s per target and size ` +
    `(+${WARMUP_SECONDS} s warm-up each); medians across rounds\n`)

  const tmpDir = makeTmpDir()
  const origin = await forkServer('origin.ts')
  const [bare, passthrough] = await Promise.all([forkServer('bare.ts'), forkServer('passthrough.ts', [String(origin.port)])])
  const proxy = await startProxy(tmpDir)
  const bareBase = `http://127.0.0.1:${bare.port}`
  const proxyBase = `http://127.0.0.1:${proxy.port}/127.0.0.1:${origin.port}`
  const passBase = `http://127.0.0.1:${passthrough.port}`
  console.log(`origin :${origin.port} (pid ${origin.child.pid}), bare :${bare.port} (pid ${bare.child.pid}), ` +
    `proxy :${proxy.port} (pid ${proxy.child.pid})`)

  // Warm the cache and check that both targets send the right bytes, and the proxy from cache.
  const expected = makeBodies()
  const sha = (b: Buffer): string => createHash('sha1').update(b).digest('hex')
  const warm: Record<string, string> = {}
  for (const p of PATHS) {
    const want = sha(expected.get(p)?.bytes ?? Buffer.alloc(0))
    const first = await get(proxyBase + p)
    const second = await get(proxyBase + p)
    const direct = await get(bareBase + p)
    for (const [name, got] of [['proxy', first], ['proxy', second], ['bare', direct]] as const) {
      if (got.status !== 200 || sha(got.body) !== want) {
        throw new Error(`${name} ${p}: status ${got.status}, ${got.body.length} bytes, not the expected body`)
      }
    }
    warm[p] = `${String(first.headers['x-cache'] ?? '?')} ${fmt(first.ms, 1)} ms -> ${String(second.headers['x-cache'] ?? '?')} ${fmt(second.ms, 1)} ms`
  }
  console.log(`warm-up (x-cache, first -> second request): ${PATHS.map((p) => `${p} ${warm[p]}`).join('; ')}\n`)

  const plan = { rounds: ROUNDS, seconds: SECONDS, warmupSeconds: WARMUP_SECONDS, overBudget: () => Date.now() - started > TOTAL_BUDGET_MS }
  const loads: Compared[] = []
  const bareT = (p: string): Target => ({ name: 'bare', url: bareBase + p, child: bare.child })
  const proxyT = (p: string, fresh = false): Target => ({ name: 'proxy', url: proxyBase + p, child: proxy.child, fresh })
  const passT = (p: string, fresh = false): Target => ({ name: 'passthrough', url: passBase + p, child: passthrough.child, fresh })
  for (const p of PATHS) if (wanted(`${p} hit`)) loads.push(await compare(`${p} hit`, bareT(p), proxyT(p), plan))
  // nginx and Varnish (when installed) on the same hits, each against the same bare Fastify.
  const anchorLoads: Compared[] = []
  if (haveWrk() && wanted('anchors')) {
    for (const anchor of await startAnchors(tmpDir, origin.port)) {
      for (const p of PATHS) {
        await get(`http://127.0.0.1:${anchor.port}${p}`) // fills its cache
        const t: Target = { name: anchor.name, url: `http://127.0.0.1:${anchor.port}${p}`, child: anchor.child }
        anchorLoads.push(await compare(`${p} hit`, bareT(p), t, plan))
      }
    }
  }
  loads.push(...await missScenarios(passT, proxyT, plan, wanted)) // 'no-store miss', 'cold no-store miss' (bench/miss.ts)
  if (haveWrk() && wanted('store fill')) loads.push(await compare('store fill', passT('/fill/', true), proxyT('/fill/', true), plan))
  const short = loads.filter((r) => r.rounds.length < ROUNDS).length
  printResults(loads)
  if (anchorLoads.length > 0) printAnchors(loads, anchorLoads)
  if (short > 0) console.log(`note: rounds skipped in ${short} scenario(s) to stay within the ${TOTAL_BUDGET_MS / 1000} s budget`)

  // The client's own floor: the same burst straight to the origin (its own fresh URL).
  const direct = await Promise.allSettled(Array.from({ length: PROBE_REQUESTS }, async () =>
    await get(`http://127.0.0.1:${origin.port}/slow?k=${randomUUID()}-direct`, 30_000)))
  const directMs = direct.filter((r): r is PromiseFulfilledResult<Got> => r.status === 'fulfilled').map((r) => r.value.ms)

  // Coalescing probe: simultaneous cold requests for one fresh URL.
  const key = randomUUID()
  const slowPath = `/slow?k=${key}`
  const results = await Promise.allSettled(Array.from({ length: PROBE_REQUESTS }, async () => await get(proxyBase + slowPath, 30_000)))
  const ok = results.filter((r): r is PromiseFulfilledResult<Got> => r.status === 'fulfilled').map((r) => r.value)
  const latencies = ok.map((g) => g.ms)
  const statuses = new Map<string, number>()
  for (const g of ok) {
    const label = `${g.status} ${String(g.headers['x-cache'] ?? '-')}`
    statuses.set(label, (statuses.get(label) ?? 0) + 1)
  }
  const failed = results.length - ok.length
  const stats = JSON.parse((await get(`http://127.0.0.1:${origin.port}/stats`)).body.toString('utf8')) as Record<string, number>
  const originHits = stats[slowPath] ?? 0
  const after = await get(proxyBase + slowPath)
  const probe = {
    requests: PROBE_REQUESTS,
    originHits,
    failed,
    p50: percentile(latencies, 50),
    max: latencies.length > 0 ? Math.max(...latencies) : NaN,
    statuses: Object.fromEntries(statuses),
    followUp: `${after.status} ${String(after.headers['x-cache'] ?? '-')} ${fmt(after.ms, 1)} ms`
  }
  console.log(`\ncoalescing probe: ${PROBE_REQUESTS} simultaneous cold requests for ${slowPath.slice(0, 16)}... (origin answers after 200 ms)`)
  console.log(`  reached the origin: ${originHits} of ${PROBE_REQUESTS}`)
  console.log(`  client latency: p50 ${fmt(probe.p50)} ms, max ${fmt(probe.max)} ms; failed ${failed}`)
  console.log(`  baseline, the same burst straight to the origin (100 requests, 100 origin hits): p50 ${fmt(percentile(directMs, 50))} ms, max ${fmt(directMs.length > 0 ? Math.max(...directMs) : NaN)} ms`)
  console.log(`  responses (status x-cache): ${[...statuses].map(([k, n]) => `${k} x${n}`).join(', ')}`)
  console.log(`  next request afterwards: ${probe.followUp}`)

  const stores = wanted('stores') ? await benchStores(tmpDir, origin.port, ROUNDS, SECONDS) : undefined
  const built = { proxy: path.join(here, '..', 'dist') }
  const coalesce = wanted('coalesce') ? await benchCoalesce(tmpDir, origin.port, built, Math.max(ROUNDS, 6)) : undefined // bursts are short: at least 6
  if (coalesce !== undefined) printCoalesce(coalesce)
  const bigBody = wanted('gib') ? await benchBigBody(tmpDir, built, ROUNDS) : undefined
  if (bigBody !== undefined) printBigBody(bigBody)
  const memoryRss = wanted('rss') ? await benchMemoryRss(tmpDir, origin.port, built, Number(process.env.BENCH_RSS_ENTRIES ?? 100_000)) : undefined
  if (memoryRss !== undefined) printMemoryRss(memoryRss)
  const clustered = wanted('cluster') ? await benchCluster(origin.port, plan) : undefined
  if (clustered !== undefined) printCluster(clustered)
  const pm2LogCost = wanted('log') ? await benchPm2LogCost(origin.port, ROUNDS, SECONDS) : undefined
  if (pm2LogCost !== undefined) printPm2LogCost(pm2LogCost)
  const randomHits = haveWrk() && wanted('random') ? await benchRandomHits(tmpDir, origin.port, ROUNDS, SECONDS) : undefined
  const fastHits = haveWrk() && wanted('fast hits') ? await benchFastHits(origin.port, bare, tmpDir, ROUNDS, SECONDS) : undefined
  if (fastHits !== undefined) printFastHits(fastHits)
  // Only when asked for by name (BENCH_ONLY=profile): the profiler slows the proxy down.
  const fillProfile = haveWrk() && ONLY.includes('profile') ? await benchFillProfile(tmpDir, origin.port, SECONDS) : undefined
  if (fillProfile !== undefined) printFillProfile(fillProfile)

  const generation = measureGenerationCheck()
  console.log(`\nread-your-writes check on every memory-tier hit (one pread of the shared generation word): ${fmt(generation.checkNs)} ns per hit, against ${fmt(generation.emptyNs)} ns for an empty call`)
  const logCost = await measureLogCost()
  console.log(`LOG_LEVEL=info against warn: ${fmt(logCost.differenceUs, 1)} µs CPU per 1 KiB memory-tier hit (one ${logCost.lineBytes}-byte line; real sockets in one process, median of ${logCost.rounds} paired batches)`)

  if (proxy.output.total > 0) {
    console.log(`\nproxy wrote ${proxy.output.total} log line(s) at warn or above; last ones:`)
    for (const line of proxy.output.lines.slice(-5)) console.log(`  ${line.slice(0, 300)}`)
  }
  const seconds = Math.round((Date.now() - started) / 1000)
  console.log(`\ndone in ${seconds} s`)

  if (wantJson) {
    const summary = {
      machine: { ...machine, backgroundBusy },
      settings: { tool: haveWrk() ? 'wrk' : 'autocannon', connections: CONNECTIONS, rounds: ROUNDS, seconds: SECONDS, warmupSeconds: WARMUP_SECONDS },
      results: loads,
      anchors: anchorLoads,
      coalescing: probe,
      stores,
      coalesce,
      bigBody,
      memoryRss,
      cluster: clustered,
      randomHits,
      fastHits,
      fillProfile,
      generationCheck: generation,
      logCost,
      pm2LogCost,
      proxyLogLines: proxy.output.total,
      seconds
    }
    const text = JSON.stringify(summary, null, 2)
    if (jsonPath !== undefined) {
      writeFileSync(jsonPath, text + '\n')
      console.log(`JSON summary written to ${jsonPath}`)
    } else {
      console.log(text)
    }
  }
}

main().then(async () => {
  await cleanup()
  process.exit(0)
}, async (error: unknown) => {
  if (wasInterrupted()) return // the signal handler cleans up and exits
  console.error('bench failed:', error instanceof Error ? error.message : error)
  await cleanup()
  process.exit(1)
})

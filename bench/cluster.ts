/**
 * Two workers (issue #13): the proxy as 2 PM2 cluster workers (a private PM2_HOME, its daemon
 * stopped afterwards by `pm2 kill`, then by its pid) against bench/bare-cluster.ts (bare Fastify
 * under node:cluster x2), 1 KiB hits, interleaved wrk rounds. CPU per request is summed over
 * the worker PIDs from /proc (the primary, PM2's daemon or node:cluster's, only hands out
 * connections and is left out of both).
 *   BENCH_ONLY=cluster npm run bench
 */
import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { here, stopChild, track } from './processes.ts'
import { get } from './probe.ts'
import { fmt, median, table } from './stats.ts'
import { haveWrk } from './wrk.ts'
import { loadPids, startPm2Proxy } from './pm2-proxy.ts'

const PATH = '/1k'

export interface ClusterSide { rps: number, p99: number, cpuUsPerRequest: number }
export interface ClusterResult {
  label: string
  rounds: Array<{ bare: ClusterSide, proxy: ClusterSide }>
  bare: ClusterSide
  proxy: ClusterSide
  /** Median of per-round proxy/bare req/s. */
  ratio: number
  /** Median of per-round bare µs / proxy µs (> 1: the proxy is cheaper). */
  cpuRatio: number
  machineBusy: number
  problems: number
}

const CLUSTER_WARMUP_SECONDS = 5

export interface ClusterPlan { rounds: number, seconds: number, warmupSeconds: number, overBudget: () => boolean }

async function startBareCluster (): Promise<{ child: ChildProcess, port: number, workers: number[] }> {
  const child = track(fork(path.join(here, 'bare-cluster.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bare-cluster did not start in 20 s')), 20_000)
    child.on('message', (message: { listening?: number, workers?: number[] }) => {
      if (typeof message.listening !== 'number' || message.workers === undefined) return
      clearTimeout(timer)
      resolve({ child, port: message.listening, workers: message.workers })
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bare-cluster exited with ${code}`)) })
  })
}

/** Puts the 1 KiB body in both workers' memory tiers: a store read in each, then hits. */
async function warmProxy (url: string): Promise<void> {
  await get(url)
  let hits = 0
  for (let i = 0; i < 40 && hits < 10; i++) {
    const got = await get(url) // a new connection each: both workers get some
    hits = got.headers['x-cache'] === 'HIT' ? hits + 1 : 0
  }
  if (hits < 10) throw new Error('the PM2 proxy does not answer /1k from its cache')
}

export async function benchCluster (originPort: number, plan: ClusterPlan): Promise<ClusterResult | undefined> {
  if (!haveWrk()) {
    console.log('cluster: skipped (needs wrk)')
    return undefined
  }
  const bare = await startBareCluster()
  const proxy = await startPm2Proxy()
  try {
    const bareUrl = `http://127.0.0.1:${bare.port}${PATH}`
    const proxyUrl = `http://127.0.0.1:${proxy.port}/127.0.0.1:${originPort}${PATH}`
    await warmProxy(proxyUrl)
    console.log(`cluster: bare x2 :${bare.port} (workers ${bare.workers.join(', ')}), PM2 proxy x2 :${proxy.port} (workers ${proxy.workers.join(', ')})`)
    // Freshly started PM2 workers run ~2x the CPU per hit for their first seconds (JIT warm-up
    // split over two processes): both sides get a longer warm-up than the single-process rows.
    await loadPids(bareUrl, CLUSTER_WARMUP_SECONDS, bare.workers)
    await loadPids(proxyUrl, CLUSTER_WARMUP_SECONDS, proxy.workers)
    const rounds: ClusterResult['rounds'] = []
    const busy: number[] = []
    let problems = 0
    for (let round = 0; round < plan.rounds && (round === 0 || !plan.overBudget()); round++) {
      const order = round % 2 === 0 ? ['bare', 'proxy'] as const : ['proxy', 'bare'] as const
      const got: Partial<Record<'bare' | 'proxy', Awaited<ReturnType<typeof loadPids>>>> = {}
      for (const which of order) {
        got[which] = which === 'bare' ? await loadPids(bareUrl, plan.seconds, bare.workers) : await loadPids(proxyUrl, plan.seconds, proxy.workers)
      }
      const b = got.bare as Awaited<ReturnType<typeof loadPids>>
      const p = got.proxy as Awaited<ReturnType<typeof loadPids>>
      rounds.push({ bare: b, proxy: p })
      busy.push(b.busy, p.busy)
      problems += b.problems + p.problems
      process.stderr.write(`  cluster round ${round + 1}/${plan.rounds}: bare x2 ${fmt(b.rps)} req/s ${fmt(b.cpuUsPerRequest, 1)} µs, ` +
        `proxy x2 ${fmt(p.rps)} req/s ${fmt(p.cpuUsPerRequest, 1)} µs\n`)
    }
    const side = (pick: (r: ClusterResult['rounds'][number]) => ClusterSide): ClusterSide => ({
      rps: median(rounds.map((r) => pick(r).rps)),
      p99: median(rounds.map((r) => pick(r).p99)),
      cpuUsPerRequest: median(rounds.map((r) => pick(r).cpuUsPerRequest))
    })
    return {
      label: '1k hit, 2 workers',
      rounds,
      bare: side((r) => r.bare),
      proxy: side((r) => r.proxy),
      ratio: median(rounds.map((r) => r.proxy.rps / r.bare.rps)),
      cpuRatio: median(rounds.map((r) => r.bare.cpuUsPerRequest / r.proxy.cpuUsPerRequest)),
      machineBusy: median(busy),
      problems
    }
  } finally {
    await proxy.stop()
    await stopChild(bare.child)
  }
}

export function printCluster (result: ClusterResult): void {
  console.log('\n2 workers: PM2 cluster x2 (proxy) vs node:cluster x2 (bare Fastify), 1 KiB hits; CPU summed over the two worker PIDs')
  console.log(table(
    ['scenario', 'bare req/s', 'proxy req/s', 'proxy/bare', 'bare µs/req', 'proxy µs/req', 'cpu ratio', 'bare p99 ms', 'proxy p99 ms', 'machine busy %', 'errors'],
    [[result.label, fmt(result.bare.rps), fmt(result.proxy.rps), fmt(result.ratio, 2), fmt(result.bare.cpuUsPerRequest, 1),
      fmt(result.proxy.cpuUsPerRequest, 1), fmt(result.cpuRatio, 2), fmt(result.bare.p99, 1), fmt(result.proxy.p99, 1),
      fmt(result.machineBusy), String(result.problems)]]
  ))
}

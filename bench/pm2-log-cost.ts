/**
 * What LOG_LEVEL=info costs a hit where the proxy runs as deployed: under PM2, whose workers'
 * stdout goes to the daemon (an IPC message per write) and to the app's log file. One PM2
 * worker at `info` and one at `warn` (each under its own private daemon), 1 KiB hits from the
 * memory tier, interleaved wrk rounds; per request, the worker's CPU and the whole machine's
 * (wrk, PM2's daemon, everything: the same client load for both, so the difference is the log).
 *   BENCH_ONLY=log npm run bench
 */
import { get } from './probe.ts'
import { fmt, median, table } from './stats.ts'
import { haveWrk } from './wrk.ts'
import { loadPids, startPm2Proxy, type PidsLoad } from './pm2-proxy.ts'

const LEVELS = ['info', 'warn'] as const
type Level = typeof LEVELS[number]

export interface Pm2LogCost {
  rounds: Array<Record<Level, PidsLoad>>
  info: { rps: number, workerUs: number, machineUs: number }
  warn: { rps: number, workerUs: number, machineUs: number }
  /** Medians of the per-round differences, info minus warn. */
  workerUs: number
  machineUs: number
}

export async function benchPm2LogCost (originPort: number, rounds: number, seconds: number): Promise<Pm2LogCost | undefined> {
  if (!haveWrk()) {
    console.log('log under PM2: skipped (needs wrk)')
    return undefined
  }
  const info = await startPm2Proxy(1, { LOG_LEVEL: 'info' })
  let warn: Awaited<ReturnType<typeof startPm2Proxy>>
  try {
    warn = await startPm2Proxy(1, { LOG_LEVEL: 'warn' })
  } catch (error) {
    await info.stop()
    throw error
  }
  const proxies = { info, warn }
  try {
    const url = (level: Level): string => `http://127.0.0.1:${proxies[level].port}/127.0.0.1:${originPort}/1k`
    for (const level of LEVELS) {
      for (let i = 0; i < 3; i++) await get(url(level)) // a miss, a store read, then memory-tier hits
      await loadPids(url(level), 3, proxies[level].workers) // JIT warm-up
    }
    const measured: Pm2LogCost['rounds'] = []
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? LEVELS : [...LEVELS].reverse()
      const got: Partial<Record<Level, PidsLoad>> = {}
      for (const level of order) got[level] = await loadPids(url(level), seconds, proxies[level].workers)
      measured.push(got as Record<Level, PidsLoad>)
      process.stderr.write(`  log round ${round + 1}/${rounds}: ${LEVELS.map((l) => `${l} ${fmt(got[l]?.rps ?? NaN)} req/s, ` +
        `worker ${fmt(got[l]?.cpuUsPerRequest ?? NaN, 1)} µs, machine ${fmt(got[l]?.machineUsPerRequest ?? NaN, 1)} µs`).join('; ')}\n`)
    }
    const side = (level: Level): Pm2LogCost['info'] => ({
      rps: median(measured.map((r) => r[level].rps)),
      workerUs: median(measured.map((r) => r[level].cpuUsPerRequest)),
      machineUs: median(measured.map((r) => r[level].machineUsPerRequest))
    })
    return {
      rounds: measured,
      info: side('info'),
      warn: side('warn'),
      workerUs: median(measured.map((r) => r.info.cpuUsPerRequest - r.warn.cpuUsPerRequest)),
      machineUs: median(measured.map((r) => r.info.machineUsPerRequest - r.warn.machineUsPerRequest))
    }
  } finally {
    await proxies.info.stop()
    await proxies.warn.stop()
  }
}

export function printPm2LogCost (cost: Pm2LogCost): void {
  console.log(`\nLOG_LEVEL=info under PM2 (1 worker each, 1 KiB memory-tier hits, ${cost.rounds.length} interleaved rounds; lines to the app's PM2 log)`)
  console.log(table(
    ['level', 'req/s', 'worker µs/req', 'machine µs/req'],
    [...LEVELS.map((l) => [l, fmt(cost[l].rps), fmt(cost[l].workerUs, 1), fmt(cost[l].machineUs, 1)]),
      ['info - warn', '', fmt(cost.workerUs, 1), fmt(cost.machineUs, 1)]]
  ))
}

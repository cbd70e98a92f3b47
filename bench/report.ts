/** The bench's result tables: throughput, p99 and server CPU per request, each against its baseline. */
import type { Compared } from './compare.ts'
import { fmt, table } from './stats.ts'

export function printResults (results: Compared[]): void {
  console.log('\nthroughput (medians across rounds; ratio = median of per-round proxy/baseline req/s)')
  console.log(table(
    ['scenario', 'baseline', 'base req/s', 'proxy req/s', 'proxy/base', 'base p99 ms', 'proxy p99 ms', 'errors'],
    results.map((r) => [r.label, r.baseline, fmt(r.base.rps), fmt(r.proxy.rps), fmt(r.ratio, 2),
      fmt(r.base.p99, 1), fmt(r.proxy.p99, 1), String(r.problems)])
  ))
  console.log('\nserver CPU per request from /proc/<pid>/stat (user + system; cpu ratio = base µs / proxy µs, 1.0 = as cheap)')
  console.log(table(
    ['scenario', 'base µs/req', 'proxy µs/req', 'cpu ratio', 'base srv %', 'proxy srv %', 'machine busy %'],
    results.map((r) => [r.label, fmt(r.base.cpuUsPerRequest, 1), fmt(r.proxy.cpuUsPerRequest, 1), fmt(r.cpuRatio, 2),
      fmt(r.base.serverCpu), fmt(r.proxy.serverCpu), fmt(r.machineBusy)])
  ))
  const fill = results.find((r) => r.label === 'store fill')
  if (fill !== undefined) {
    console.log(`\nstore fill: ${fmt(fill.proxy.rps)} cacheable misses stored per second (each request a URL never seen; ` +
      `passthrough of the same requests ${fmt(fill.base.rps)}/s)`)
  }
}

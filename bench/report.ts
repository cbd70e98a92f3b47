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

/** The proxy beside nginx and Varnish on the same hits, each as a ratio to the same bare Fastify. */
export function printAnchors (results: Compared[], anchors: Compared[]): void {
  const names = [...new Set(anchors.map((a) => a.subject))]
  const labels = [...new Set(anchors.map((a) => a.label))]
  console.log('\nbeside nginx and Varnish (each measured against the same bare Fastify: req/s ratio, CPU µs per request)')
  console.log(table(
    ['scenario', 'proxy/bare', 'proxy µs', ...names.flatMap((n) => [`${n}/bare`, `${n} µs`])],
    labels.map((label) => {
      const ours = results.find((r) => r.label === label)
      return [label, fmt(ours?.ratio ?? NaN, 2), fmt(ours?.proxy.cpuUsPerRequest ?? NaN, 1), ...names.flatMap((n) => {
        const a = anchors.find((r) => r.label === label && r.subject === n)
        return [fmt(a?.ratio ?? NaN, 2), fmt(a?.proxy.cpuUsPerRequest ?? NaN, 1)]
      })]
    })
  ))
}

/**
 * A/B of two proxy builds on 1 KiB memory-tier hits (levers, issue #13), interleaved rounds:
 *   node --import tsx bench/ab.ts <dist A> <dist B> [path=/1k]
 * Prints per-round req/s and server CPU µs per request, and the medians of the B/A ratios.
 */
import { forkServer, cleanup, makeTmpDir, startBuild } from './processes.ts'
import { get } from './probe.ts'
import { fmt, median } from './stats.ts'
import { load } from './wrk.ts'

const [distA, distB, p = '/1k'] = process.argv.slice(2)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)

async function main (): Promise<void> {
  const dir = makeTmpDir()
  const origin = await forkServer('origin.ts')
  const a = await startBuild(distA, dir, 'a', { LOG_LEVEL: process.env.AB_LOG_LEVEL ?? 'warn' })
  const b = await startBuild(distB, dir, 'b', { LOG_LEVEL: process.env.AB_LOG_LEVEL ?? 'warn' })
  const url = (port: number): string => `http://127.0.0.1:${port}/127.0.0.1:${origin.port}${p}`
  for (const t of [a, b]) { await get(url(t.port)); const h = await get(url(t.port)); if (h.headers['x-cache'] !== 'HIT') throw new Error('no hit') }
  await load(url(a.port), 1, a.child); await load(url(b.port), 1, b.child)
  const rps: number[] = []; const cpu: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [a, b] : [b, a]
    const res = new Map()
    for (const t of order) res.set(t, await load(url(t.port), SECONDS, t.child))
    const ra = res.get(a); const rb = res.get(b)
    rps.push(rb.rps / ra.rps); cpu.push(ra.cpuUsPerRequest / rb.cpuUsPerRequest)
    console.log(`round ${r + 1}: A ${fmt(ra.rps)} req/s ${fmt(ra.cpuUsPerRequest, 1)} µs | B ${fmt(rb.rps)} req/s ${fmt(rb.cpuUsPerRequest, 1)} µs | machine ${fmt(ra.machineBusy)}%`)
  }
  console.log(`B/A req/s ${fmt(median(rps), 3)}; A µs / B µs ${fmt(median(cpu), 3)} (> 1: B is cheaper)`)
}
main().then(async () => { await cleanup(); process.exit(0) }, async (e: unknown) => { console.error(e); await cleanup(); process.exit(1) })

/**
 * A/B of two proxy builds on the SQLite store (levers, issue #13), interleaved rounds:
 *   node --import tsx bench/store-ab.ts <dist A> <dist B> [fill,random]
 * store fill (each request a URL never seen) and random hits over 100k stored entries;
 * req/s and server CPU µs per request per round, and the medians.
 */
import path from 'node:path'
import { compare } from './compare.ts'
import { benchRandomHits } from './random-hits.ts'
import { cleanup, forkServer, makeTmpDir, startProxy } from './processes.ts'
import { fmt } from './stats.ts'

const [distA, distB, only = 'fill,random'] = process.argv.slice(2)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)

async function main (): Promise<void> {
  if (distA === undefined || distB === undefined) throw new Error('usage: store-ab.ts <dist A> <dist B> [fill,random]')
  const builds = [{ name: 'A', script: path.resolve(distA, 'src', 'server.js') }, { name: 'B', script: path.resolve(distB, 'src', 'server.js') }]
  const dir = makeTmpDir()
  const origin = await forkServer('origin.ts')
  if (only.includes('fill')) {
    const [a, b] = [await startProxy(dir, { CACHE_STORE: `sqlite://${dir}/fill-a.sqlite` }, builds[0].script), await startProxy(dir, { CACHE_STORE: `sqlite://${dir}/fill-b.sqlite` }, builds[1].script)]
    const url = (port: number): string => `http://127.0.0.1:${port}/127.0.0.1:${origin.port}/fill/`
    const plan = { rounds: ROUNDS, seconds: SECONDS, warmupSeconds: 1, overBudget: () => false }
    const r = await compare('store fill', { name: 'A', url: url(a.port), child: a.child, fresh: true }, { name: 'B', url: url(b.port), child: b.child, fresh: true }, plan)
    console.log(`store fill: A ${fmt(r.base.rps)}/s ${fmt(r.base.cpuUsPerRequest)} µs/req | B ${fmt(r.proxy.rps)}/s ${fmt(r.proxy.cpuUsPerRequest)} µs/req | ` +
      `B/A req/s ${fmt(r.ratio, 2)}, A µs / B µs ${fmt(r.cpuRatio, 2)} (machine busy ${fmt(r.machineBusy)}%, errors ${r.problems})`)
  }
  if (only.includes('random')) await benchRandomHits(dir, origin.port, ROUNDS, SECONDS, builds)
}

main().then(async () => { await cleanup(); process.exit(0) }, async (error: unknown) => { console.error(error); await cleanup(); process.exit(1) })

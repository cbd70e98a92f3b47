/**
 * Uncacheable misses (issue #13): the proxy against a reply-from passthrough in bare Fastify.
 *
 * As a scenario of `npm run bench` (`missScenarios`): `no-store miss` asks one `no-store` URL
 * over and over (after the first answer the URL is in hit-for-pass), `cold no-store miss` a
 * fresh `no-store` URL on every request (no hit-for-pass memory helps: the first-miss path).
 *
 * As a lever probe, builds side by side with interleaved rounds:
 *   node --import tsx bench/miss.ts <dist A>[@level] [<dist B>[@level] ...] [--path /nostore] [--level warn]
 * prints, per round, server CPU µs per request of the passthrough and of each build, and the
 * medians of each build's CPU per request and of its ratio to the passthrough (per round).
 */
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { compare, type Compared, type Plan, type Target } from './compare.ts'
import { cleanup, forkServer, makeTmpDir, startBuild } from './processes.ts'
import { get } from './probe.ts'
import { fmt, median } from './stats.ts'
import { load, uniqueUrlScript, type Load } from './wrk.ts'

/** The scenarios for bench/run.ts: `<base>/nostore` (hit-for-pass) and fresh `<base>/nostore/<n>` URLs. */
export async function missScenarios (pass: (p: string, fresh?: boolean) => Target, proxy: (p: string, fresh?: boolean) => Target, plan: Plan,
  wanted: (label: string) => boolean): Promise<Compared[]> {
  const rows: Compared[] = []
  if (wanted('no-store miss')) rows.push(await compare('no-store miss', pass('/nostore'), proxy('/nostore'), plan))
  if (wanted('cold no-store miss')) rows.push(await compare('cold no-store miss', pass('/nostore/', true), proxy('/nostore/', true), plan))
  return rows
}

function option (args: string[], name: string, fallback: string): string {
  const at = args.indexOf(name)
  if (at === -1) return fallback
  const value = args[at + 1]
  args.splice(at, 2)
  return value
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const p = option(args, '--path', '/nostore')
  const level = option(args, '--level', 'warn')
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
  const seconds = Number(process.env.BENCH_SECONDS ?? 2)
  if (args.length === 0 || !(rounds >= 1 && rounds <= 12) || !(seconds >= 1 && seconds <= 5)) {
    throw new Error('usage: bench/miss.ts <dist A> [<dist B> ...] [--path /nostore] [--level warn] (BENCH_ROUNDS 1-12, BENCH_SECONDS 1-5)')
  }
  const fresh = p.endsWith('/')
  const dir = makeTmpDir()
  const origin = await forkServer('origin.ts')
  const passthrough = await forkServer('passthrough.ts', [String(origin.port)])
  const targets = [{ name: 'passthrough', url: `http://127.0.0.1:${passthrough.port}${p}`, child: passthrough.child }]
  for (const [i, spec] of args.entries()) {
    // `<dist>@<level>` runs that build at its own LOG_LEVEL (e.g. info against warn: the log line's cost).
    const [dist, own] = spec.split('@')
    const started = await startBuild(dist, dir, `p${i}`, { LOG_LEVEL: own ?? level })
    targets.push({ name: `${path.basename(dist)}${own === undefined ? '' : `@${own}`}`, url: `http://127.0.0.1:${started.port}/127.0.0.1:${origin.port}${p}`, child: started.child })
  }
  const run = async (t: typeof targets[number], s: number): Promise<Load> =>
    await load(t.url, s, t.child, fresh ? uniqueUrlScript(`m${randomUUID().slice(0, 8)}`) : undefined)
  for (const t of targets) {
    const first = await get(fresh ? `${t.url}warm` : t.url)
    if (first.status !== 200 || first.body.length !== 1024) throw new Error(`${t.name}: ${first.status}, ${first.body.length} bytes`)
    await run(t, 1)
  }
  const cpu = new Map(targets.map((t) => [t.name, [] as number[]]))
  const ratio = new Map(targets.map((t) => [t.name, [] as number[]]))
  // Paired with the first build, round by round: contention from other work hits both alike.
  const paired = new Map(targets.map((t) => [t.name, [] as number[]]))
  for (let r = 0; r < rounds; r++) {
    // Rotate the order so drift favours no target.
    const order = targets.map((_, i) => targets[(i + r) % targets.length])
    const got = new Map<string, Load>()
    for (const t of order) got.set(t.name, await run(t, seconds))
    const base = got.get('passthrough')?.cpuUsPerRequest ?? NaN
    const firstBuild = got.get(targets[1].name)?.cpuUsPerRequest ?? NaN
    const line = targets.map((t) => {
      const l = got.get(t.name) as Load
      cpu.get(t.name)?.push(l.cpuUsPerRequest ?? NaN)
      ratio.get(t.name)?.push(base / (l.cpuUsPerRequest ?? NaN))
      paired.get(t.name)?.push((l.cpuUsPerRequest ?? NaN) - firstBuild)
      return `${t.name} ${fmt(l.rps)} req/s ${fmt(l.cpuUsPerRequest, 1)} µs${l.errors + l.non2xx + l.timeouts > 0 ? ` (${l.errors + l.non2xx + l.timeouts} bad)` : ''}`
    }).join(' | ')
    console.log(`round ${r + 1}: ${line} | machine ${fmt(got.get('passthrough')?.machineBusy ?? null)}%`)
  }
  for (const t of targets) {
    const c = cpu.get(t.name) as number[]
    console.log(`${t.name.padEnd(14)} median ${fmt(median(c), 1)} µs/req (min ${fmt(Math.min(...c), 1)}, max ${fmt(Math.max(...c), 1)}), ` +
      `passthrough µs / this µs: ${fmt(median(ratio.get(t.name) as number[]), 3)}` +
      (t === targets[0] || t === targets[1] ? '' : `, this − ${targets[1].name}: ${fmt(median(paired.get(t.name) as number[]), 1)} µs (median of rounds)`))
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(async () => { await cleanup(); process.exit(0) }, async (e: unknown) => { console.error(e); await cleanup(); process.exit(1) })
}

/**
 * Where a stored miss spends its CPU (issue #13): the built proxy fills its store (memory://,
 * then sqlite://) with wrk on unique /fill/ URLs while the V8 sampling profiler runs in it (an
 * inspector session, started by a loader written to the temp dir: --cpu-prof is refused in
 * NODE_OPTIONS and cannot profile a process stopped by SIGTERM). Reports per store: req/s, server
 * CPU µs per request, CPU ticks per thread (libuv pool threads included, /proc/<pid>/task) and the
 * functions with the most self time. Profiling slows the proxy down: compare stores with each
 * other, not with the other scenarios. Standalone: node --import tsx bench/fill-profile.ts
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { cleanup, forkServer, here, makeTmpDir, startProxy, stopChild } from './processes.ts'
import { fmt } from './stats.ts'
import { haveWrk, load, uniqueUrlScript } from './wrk.ts'

const LOADER = `import { Session } from 'node:inspector'
import { writeFileSync } from 'node:fs'
const session = new Session()
session.connect()
session.post('Profiler.enable')
session.post('Profiler.setSamplingInterval', { interval: 500 })
session.post('Profiler.start')
process.on('exit', () => {
  session.post('Profiler.stop', (error, result) => { if (!error) writeFileSync(process.env.FILL_PROFILE_OUT, JSON.stringify(result.profile)) })
})
await import(process.env.FILL_PROFILE_SERVER)
`

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

export interface FillProfileRow {
  store: string
  rps: number
  cpuUsPerRequest: number | null
  /** CPU ticks (1/100 s) per thread name over the whole run, startup included. */
  threads: Record<string, number>
  /** Self time share (%) of the top functions. */
  top: Array<{ fn: string, pct: number }>
}

/** Self time per function (name, file, line), as shares of all samples. */
function selfTimes (profile: Profile, count: number): Array<{ fn: string, pct: number }> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<string, number>()
  let all = 0
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame
    const delta = profile.timeDeltas[i] ?? 0
    all += delta
    if (frame === undefined) return
    const file = frame.url.replace(/.*node_modules\//, '').replace(/.*\/dist\//, '')
    const key = `${frame.functionName === '' ? '(anonymous)' : frame.functionName} ${file}:${frame.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + delta)
  })
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, count).map(([fn, t]) => ({ fn, pct: all === 0 ? 0 : t / all * 100 }))
}

function threadTicks (pid: number): Record<string, number> {
  const ticks: Record<string, number> = {}
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8')
      const name = task === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks[name] = (ticks[name] ?? 0) + Number(fields[11]) + Number(fields[12]) // utime + stime
    } catch {
      // the thread ended meanwhile
    }
  }
  return ticks
}

/** Profiles a fill of each store; every process started here is stopped before it returns. */
export async function benchFillProfile (dir: string, originPort: number, seconds: number, top = 15): Promise<FillProfileRow[]> {
  const loader = path.join(dir, 'fill-profile-loader.mjs')
  writeFileSync(loader, LOADER)
  const rows: FillProfileRow[] = []
  for (const store of ['memory', 'sqlite']) {
    const out = path.join(dir, `fill-${store}.cpuprofile`)
    const proxy = await startProxy(dir, {
      CACHE_STORE: store === 'memory' ? 'memory://' : `sqlite://${path.join(dir, 'fill-profile.sqlite')}`,
      FILL_PROFILE_OUT: out,
      FILL_PROFILE_SERVER: path.join(here, '..', 'dist', 'src', 'server.js')
    }, loader)
    const url = `http://127.0.0.1:${proxy.port}/127.0.0.1:${originPort}/fill/`
    try {
      await load(url, 1, proxy.child, uniqueUrlScript(`profile-warm-${store}-${Date.now()}`))
      const measured = await load(url, seconds, proxy.child, uniqueUrlScript(`profile-${store}-${Date.now()}`))
      const threads = proxy.child.pid === undefined ? {} : threadTicks(proxy.child.pid)
      await stopChild(proxy.child)
      let profile: Profile | undefined
      try { profile = JSON.parse(readFileSync(out, 'utf8')) as Profile } catch { profile = undefined }
      rows.push({ store, rps: measured.rps, cpuUsPerRequest: measured.cpuUsPerRequest, threads, top: profile === undefined ? [] : selfTimes(profile, top) })
    } finally {
      await stopChild(proxy.child)
    }
  }
  return rows
}

export function printFillProfile (rows: FillProfileRow[]): void {
  console.log('\nstore fill under the V8 profiler (slower than unprofiled; compare the stores with each other)')
  for (const row of rows) {
    const threads = Object.entries(row.threads).map(([name, t]) => `${name} ${t}`).join(', ')
    console.log(`  ${row.store}: ${fmt(row.rps)} req/s, ${row.cpuUsPerRequest === null ? '-' : fmt(row.cpuUsPerRequest)} µs CPU/req; thread ticks: ${threads}`)
    for (const { fn, pct } of row.top) console.log(`    ${pct.toFixed(1).padStart(5)}% ${fn}`)
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.join(here, 'fill-profile.ts')) {
  if (!haveWrk()) throw new Error('fill-profile needs wrk')
  const main = async (): Promise<void> => {
    const dir = makeTmpDir()
    const origin = await forkServer('origin.ts')
    printFillProfile(await benchFillProfile(dir, origin.port, Number(process.env.BENCH_SECONDS ?? 3)))
  }
  main().then(async () => { await cleanup(); process.exit(0) }, async (error: unknown) => { console.error(error); await cleanup(); process.exit(1) })
}

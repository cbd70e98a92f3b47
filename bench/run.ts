/**
 * Benchmark: the proxy's cache hits beside a bare Fastify serving the same bytes, plus a
 * coalescing probe. Run with `npm run bench` (builds first). Every server and every load
 * generator runs in its own child process; all traffic stays on 127.0.0.1.
 *
 *   npm run bench                      text report on stdout
 *   npm run bench -- --json            ... followed by a JSON summary on stdout
 *   npm run bench -- --json out.json   ... and the JSON summary written to out.json
 *
 * BENCH_ROUNDS (1-10, default 3) and BENCH_SECONDS (1-10, default 3) shorten or lengthen the load.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { createServer } from 'node:net'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeBodies, SIZES, isListeningMessage } from './bodies.ts'
import type { LoadMessage } from './load.ts'
import { measureGenerationCheck } from './generation.ts'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const serverScript = path.join(root, 'dist', 'src', 'server.js')

const CONNECTIONS = 50
const ROUNDS = boundedEnv('BENCH_ROUNDS', 3, 1, 10)
const SECONDS = boundedEnv('BENCH_SECONDS', 3, 1, 10)
const WARMUP_SECONDS = 1
const PROBE_REQUESTS = 100
const START_TIMEOUT_MS = 20_000
const TOTAL_BUDGET_MS = 170_000 // load rounds are skipped past this, so the run stays bounded
const PATHS = Object.keys(SIZES)

function boundedEnv (name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name}: expected an integer ${min}-${max}`)
  return value
}

// ---------------------------------------------------------------------------------------------
// Children and clean-up

const children = new Set<ChildProcess>()
let tmpDir: string | undefined

function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

function exited (child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (exited(child)) return
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const hard = setTimeout(() => { if (!exited(child)) child.kill('SIGKILL') }, 3000)
  await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5000))])
  clearTimeout(hard)
}

let cleanedUp = false
let interrupted = false
async function cleanup (): Promise<void> {
  if (cleanedUp) return
  cleanedUp = true
  await Promise.all([...children].map(stopChild))
  for (const child of children) if (!exited(child)) child.kill('SIGKILL')
  if (tmpDir !== undefined) rmSync(tmpDir, { recursive: true, force: true })
}

// Last resort if the process ends without awaiting cleanup(): synchronous kills only.
process.on('exit', () => {
  for (const child of children) if (!exited(child)) child.kill('SIGKILL')
  if (tmpDir !== undefined) rmSync(tmpDir, { recursive: true, force: true })
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true
    console.error(`\nbench: ${signal}, stopping children`)
    cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  })
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') return reject(new Error('no port'))
      server.close(() => resolve(address.port))
    })
  })
}

/** Forks a bench/*.ts server and resolves with the port it reports over IPC. */
async function forkServer (script: string): Promise<{ child: ChildProcess, port: number }> {
  const child = track(fork(path.join(here, script), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  }))
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start in ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    child.on('message', (message) => {
      if (!isListeningMessage(message)) return
      clearTimeout(timer)
      resolve({ child, port: message.listening })
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${script} exited before listening (code ${code}, signal ${signal})`))
    })
  })
}

/** Keeps the last lines a child wrote, to show them if something goes wrong. */
class OutputTail {
  lines: string[] = []
  total = 0
  push (chunk: Buffer): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue
      this.total++
      this.lines.push(line)
      if (this.lines.length > 20) this.lines.shift()
    }
  }
}

async function startProxy (dir: string): Promise<{ child: ChildProcess, port: number, output: OutputTail }> {
  if (!existsSync(serverScript)) throw new Error(`${serverScript} is missing: run npm run build`)
  const port = await freePort()
  const output = new OutputTail()
  const child = track(spawn(process.execPath, [serverScript], {
    cwd: dir, // no stray .env or ./data from the project directory
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      CACHE_STORE: `sqlite://${path.join(dir, 'bench.sqlite')}`,
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'false',
      ALLOW_PRIVATE_UPSTREAMS: 'true',
      UPSTREAM_PORTS: '*', // the origin listens on an ephemeral port
      WORKERS: '1'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  }))
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk))
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk))
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (exited(child)) throw new Error(`proxy exited at start (code ${child.exitCode}):\n${output.lines.join('\n')}`)
    try {
      await get(`http://127.0.0.1:${port}/`, 1000)
      return { child, port, output }
    } catch {
      await sleep(100)
    }
  }
  throw new Error(`proxy did not answer within ${START_TIMEOUT_MS} ms:\n${output.lines.join('\n')}`)
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

interface Got {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  ms: number
}

const probeAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity })

async function get (url: string, timeoutMs = 10_000, agent: http.Agent = probeAgent): Promise<Got> {
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: Buffer.concat(chunks),
        ms: performance.now() - started
      }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${url}`)))
    req.on('error', reject)
  })
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux; figures are null elsewhere)

const CLK_TCK = 100 // USER_HZ; 100 on every Linux we care about

function processTicks (pid: number | undefined): number | null {
  if (pid === undefined) return null
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12]) // utime + stime (fields 14, 15)
  } catch {
    return null
  }
}

function machineTicks (): { busy: number, total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
    const values = line.trim().split(/\s+/).slice(1).map(Number)
    const total = values.reduce((a, b) => a + b, 0)
    const idle = (values[3] ?? 0) + (values[4] ?? 0)
    return { busy: total - idle, total }
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// Load (autocannon CLI in its own process)

interface LoadResult {
  rps: number
  p50: number
  p99: number
  requests: number
  errors: number
  timeouts: number
  non2xx: number
  throughputMBs: number
  serverCpu: number | null // percent of one core used by the server process during the load
  loadCpu: number | null // percent of one core used by the autocannon process
  machineBusy: number | null // percent of all cores busy (everything on the machine)
}

function isLoadMessage (message: unknown): message is LoadMessage {
  return typeof message === 'object' && message !== null && 'type' in message
}

/** One autocannon run in a forked bench/load.ts; CPU is sampled between its start and result messages. */
async function autocannon (url: string, seconds: number, server: ChildProcess): Promise<LoadResult> {
  const child = track(fork(path.join(here, 'load.ts'), [url, String(CONNECTIONS), String(seconds)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc']
  }))
  const err = new OutputTail()
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk))
  let ticksBefore: number | null = null
  let machineBefore: ReturnType<typeof machineTicks> = null
  let wallBefore = performance.now()
  const limit = setTimeout(() => child.kill('SIGKILL'), seconds * 1000 + 20_000)
  try {
    return await new Promise<LoadResult>((resolve, reject) => {
      child.on('message', (message) => {
        if (!isLoadMessage(message)) return
        if (message.type === 'start') {
          ticksBefore = processTicks(server.pid)
          machineBefore = machineTicks()
          wallBefore = performance.now()
          return
        }
        const wallSeconds = (performance.now() - wallBefore) / 1000
        const ticksAfter = processTicks(server.pid)
        const machineAfter = machineTicks()
        const r = message.result
        if (r === undefined) return reject(new Error('load: result message without a result'))
        resolve({
          rps: r.requests.average,
          p50: r.latency.p50,
          p99: r.latency.p99,
          requests: r.requests.total,
          errors: r.errors,
          timeouts: r.timeouts,
          non2xx: r.non2xx,
          throughputMBs: r.throughput.average / 1024 / 1024,
          serverCpu: ticksBefore === null || ticksAfter === null
            ? null
            : (ticksAfter - ticksBefore) / CLK_TCK / wallSeconds * 100,
          loadCpu: message.cpuSeconds === undefined || message.wallSeconds === undefined
            ? null
            : message.cpuSeconds / message.wallSeconds * 100,
          machineBusy: machineBefore === null || machineAfter === null || machineAfter.total === machineBefore.total
            ? null
            : (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total) * 100
        })
      })
      child.once('exit', (code, signal) => reject(new Error(`autocannon ${url} exited (code ${code}, signal ${signal}) ` +
        `without a result: ${err.lines.join('\n')}`)))
    })
  } finally {
    clearTimeout(limit)
    await stopChild(child)
  }
}

function median (values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]
}

// ---------------------------------------------------------------------------------------------
// Formatting

function fmt (value: number | null, digits = 0): string {
  if (value === null || !Number.isFinite(value)) return '-'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

// ---------------------------------------------------------------------------------------------
// Main

interface SizeSummary {
  path: string
  bytes: number
  rounds: { bare: LoadResult, proxy: LoadResult }[]
  bareRps: number
  proxyRps: number
  ratio: number
  bareP99: number
  proxyP99: number
  bareCpu: number
  proxyCpu: number
  bareLoadCpu: number
  proxyLoadCpu: number
  machineBusy: number
  problems: number
}

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
  console.log(`load: autocannon -c ${CONNECTIONS}, ${ROUNDS} interleaved rounds x ${SECONDS} s per target and size ` +
    `(+${WARMUP_SECONDS} s warm-up each); medians across rounds\n`)

  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'caching-proxy-bench-'))
  const [origin, bare] = await Promise.all([forkServer('origin.ts'), forkServer('bare.ts')])
  const proxy = await startProxy(tmpDir)
  const bareBase = `http://127.0.0.1:${bare.port}`
  const proxyBase = `http://127.0.0.1:${proxy.port}/127.0.0.1:${origin.port}`
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

  const sizes: SizeSummary[] = []
  let skipped = 0
  for (const p of PATHS) {
    const targets = { bare: { url: bareBase + p, child: bare.child }, proxy: { url: proxyBase + p, child: proxy.child } }
    await autocannon(targets.bare.url, WARMUP_SECONDS, bare.child)
    await autocannon(targets.proxy.url, WARMUP_SECONDS, proxy.child)
    const rounds: SizeSummary['rounds'] = []
    for (let round = 0; round < ROUNDS; round++) {
      if (Date.now() - started > TOTAL_BUDGET_MS) { skipped++; continue }
      // Alternate which target goes first so drift (thermal, GC, page cache) does not favour one.
      const order = round % 2 === 0 ? ['bare', 'proxy'] as const : ['proxy', 'bare'] as const
      const got: Partial<Record<'bare' | 'proxy', LoadResult>> = {}
      for (const name of order) got[name] = await autocannon(targets[name].url, SECONDS, targets[name].child)
      if (got.bare !== undefined && got.proxy !== undefined) rounds.push({ bare: got.bare, proxy: got.proxy })
      process.stderr.write(`  ${p} round ${round + 1}/${ROUNDS}: bare ${fmt(got.bare?.rps ?? null)} req/s, proxy ${fmt(got.proxy?.rps ?? null)} req/s\n`)
    }
    sizes.push({
      path: p,
      bytes: SIZES[p],
      rounds,
      bareRps: median(rounds.map((r) => r.bare.rps)),
      proxyRps: median(rounds.map((r) => r.proxy.rps)),
      ratio: median(rounds.map((r) => r.proxy.rps / r.bare.rps)),
      bareP99: median(rounds.map((r) => r.bare.p99)),
      proxyP99: median(rounds.map((r) => r.proxy.p99)),
      bareCpu: median(rounds.map((r) => r.bare.serverCpu ?? NaN)),
      proxyCpu: median(rounds.map((r) => r.proxy.serverCpu ?? NaN)),
      bareLoadCpu: median(rounds.map((r) => r.bare.loadCpu ?? NaN)),
      proxyLoadCpu: median(rounds.map((r) => r.proxy.loadCpu ?? NaN)),
      machineBusy: median(rounds.flatMap((r) => [r.bare.machineBusy ?? NaN, r.proxy.machineBusy ?? NaN])),
      problems: rounds.reduce((n, r) => n + r.bare.errors + r.bare.non2xx + r.bare.timeouts +
        r.proxy.errors + r.proxy.non2xx + r.proxy.timeouts, 0)
    })
  }

  console.log('\ncache hits: proxy vs bare Fastify (medians; ratio = median of per-round proxy/bare)')
  console.log(table(
    ['size', 'bare req/s', 'proxy req/s', 'proxy/bare', 'bare p99 ms', 'proxy p99 ms', 'errors'],
    sizes.map((s) => [s.path, fmt(s.bareRps), fmt(s.proxyRps), fmt(s.ratio, 2), fmt(s.bareP99), fmt(s.proxyP99), String(s.problems)])
  ))
  console.log('\nwhere the CPU went (medians; % of one core, machine = % of all cores)')
  console.log(table(
    ['size', 'bare srv', 'autocannon vs bare', 'proxy srv', 'autocannon vs proxy', 'machine busy'],
    sizes.map((s) => [s.path, fmt(s.bareCpu), fmt(s.bareLoadCpu), fmt(s.proxyCpu), fmt(s.proxyLoadCpu), fmt(s.machineBusy)])
  ))
  if (skipped > 0) console.log(`note: ${skipped} round(s) skipped to stay within the ${TOTAL_BUDGET_MS / 1000} s budget`)

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

  const generation = measureGenerationCheck()
  console.log(`\nread-your-writes check on every memory-tier hit (one pread of the shared generation word): ${fmt(generation.checkNs)} ns per hit, against ${fmt(generation.emptyNs)} ns for an empty call`)

  if (proxy.output.total > 0) {
    console.log(`\nproxy wrote ${proxy.output.total} log line(s) at warn or above; last ones:`)
    for (const line of proxy.output.lines.slice(-5)) console.log(`  ${line.slice(0, 300)}`)
  }
  const seconds = Math.round((Date.now() - started) / 1000)
  console.log(`\ndone in ${seconds} s`)

  if (wantJson) {
    const summary = {
      machine: { ...machine, backgroundBusy },
      settings: { connections: CONNECTIONS, rounds: ROUNDS, seconds: SECONDS, warmupSeconds: WARMUP_SECONDS },
      sizes,
      coalescing: probe,
      generationCheck: generation,
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
  if (interrupted) return // the signal handler cleans up and exits
  console.error('bench failed:', error instanceof Error ? error.message : error)
  await cleanup()
  process.exit(1)
})

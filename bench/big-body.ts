/**
 * A 1 GiB body streamed through the proxy beside nginx (issue #13: >= 0.9x nginx). The origin
 * (gib-origin.ts) writes 1 GiB generated from one 64 KiB chunk, honouring
 * backpressure, never held in memory; it is cacheable but over MAX_ENTRY_BYTES, so the proxy
 * streams it. curl downloads it to /dev/null; the bench records the time and the CPU the proxy
 * (or nginx, one process, master_process off) spent, from /proc. Interleaved rounds, medians.
 * Also the passthrough (bench/passthrough.ts: @fastify/reply-from in a bare Fastify, the
 * forwarding this stack gives, with the workers' malloc setting): the ceiling for Node here.
 * nginx runs from its own config and prefix in the run's temp dir, stopped by PID.
 *
 *   node --import tsx bench/big-body.ts [dist A] [dist B]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { CLK_TCK, processTicks } from './load-run.ts'
import { startBuild } from './processes.ts'
import { cleanup, forkServer, freePort, here, makeTmpDir, track } from './processes.ts'
import { get, sleep } from './probe.ts'
import { fmt, median } from './stats.ts'
import { workerEnv } from '../src/worker-env.ts'

const run = promisify(execFile)
const GIB = 2 ** 30
const NGINX = '/usr/sbin/nginx'
const TRANSFER_TIMEOUT_S = 60

export interface BigBodyResult { name: string, seconds: number[], cpuSeconds: number[], mbps: number, cpu: number, vsNginx?: number, vsPassthrough?: number }

async function startNginx (dir: string, originPort: number): Promise<{ child: ChildProcess, port: number } | undefined> {
  if (!existsSync(NGINX)) return undefined
  const prefix = path.join(dir, 'nginx')
  mkdirSync(path.join(prefix, 'logs'), { recursive: true })
  const port = await freePort()
  const conf = path.join(prefix, 'nginx.conf')
  writeFileSync(conf, `daemon off;
master_process off;
worker_processes 1;
pid ${path.join(prefix, 'nginx.pid')};
error_log ${path.join(prefix, 'logs', 'error.log')} warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi;
  uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
  upstream origin { server 127.0.0.1:${originPort}; keepalive 8; }
  server {
    listen 127.0.0.1:${port};
    # Buffers sized for large bodies (the 4k/8k defaults cost nginx ~40% here); never to disk.
    location / {
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffer_size 64k; proxy_buffers 8 64k; proxy_busy_buffers_size 128k; proxy_max_temp_file_size 0;
    }
  }
}
`)
  // Its own process group: signals nginx sends its group on exit must not reach the bench.
  const child = track(spawn(NGINX, ['-p', prefix, '-c', conf], { stdio: 'ignore', detached: true }))
  for (let i = 0; i < 50; i++) {
    try { await get(`http://127.0.0.1:${port}/up`, 500); break } catch { await sleep(100) }
  }
  return { child, port }
}

/** Downloads `url` with curl into /dev/null: seconds, and the server CPU seconds from /proc. */
async function transfer (url: string, server: ChildProcess): Promise<{ seconds: number, cpuSeconds: number }> {
  const before = processTicks(server.pid)
  const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '--max-time', String(TRANSFER_TIMEOUT_S), '-w', '%{http_code} %{size_download} %{time_total}', url], { timeout: (TRANSFER_TIMEOUT_S + 5) * 1000 })
  const after = processTicks(server.pid)
  const [code, size, total] = stdout.trim().split(' ')
  if (code !== '200' || Number(size) !== GIB) throw new Error(`${url}: status ${code}, ${size} bytes, expected 200 and ${GIB}`)
  return { seconds: Number(total), cpuSeconds: before === null || after === null ? NaN : (after - before) / CLK_TCK }
}

export async function benchBigBody (tmpDir: string, dists: Record<string, string>, rounds: number): Promise<BigBodyResult[]> {
  const origin = await forkServer('gib-origin.ts')
  const targets: Array<{ name: string, url: string, child: ChildProcess }> = []
  for (const [name, dist] of Object.entries(dists)) {
    const worker = await startBuild(dist, tmpDir, `rss-gib-${name}`)
    targets.push({ name, url: `http://127.0.0.1:${worker.port}/127.0.0.1:${origin.port}/gib`, child: worker.child })
  }
  const passthrough = await forkServer('passthrough.ts', [String(origin.port)], workerEnv())
  targets.push({ name: 'passthrough', url: `http://127.0.0.1:${passthrough.port}/gib`, child: passthrough.child })
  const nginx = await startNginx(tmpDir, origin.port)
  if (nginx !== undefined) targets.push({ name: 'nginx', url: `http://127.0.0.1:${nginx.port}/gib`, child: nginx.child })
  const measured = new Map(targets.map((t) => [t.name, { seconds: [] as number[], cpuSeconds: [] as number[] }]))
  for (let round = 0; round < rounds; round++) {
    for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
      const { seconds, cpuSeconds } = await transfer(target.url, target.child)
      measured.get(target.name)?.seconds.push(seconds)
      measured.get(target.name)?.cpuSeconds.push(cpuSeconds)
    }
  }
  const results: BigBodyResult[] = [...measured].map(([name, m]) => ({ name, ...m, mbps: GIB / 2 ** 20 / median(m.seconds), cpu: median(m.cpuSeconds) }))
  const reference = results.find((r) => r.name === 'nginx')
  const node = results.find((r) => r.name === 'passthrough')
  for (const r of results) {
    if (reference !== undefined) r.vsNginx = r.mbps / reference.mbps
    if (node !== undefined) r.vsPassthrough = r.mbps / node.mbps
  }
  return results
}

export function printBigBody (results: BigBodyResult[]): void {
  console.log('\n1 GiB streamed body (over MAX_ENTRY_BYTES, not stored), curl to /dev/null; medians of interleaved rounds')
  for (const r of results) {
    const ratios = [[r.vsNginx, 'nginx'], [r.vsPassthrough, 'passthrough']].filter(([x]) => x !== undefined).map(([x, name]) => `${fmt(x as number, 2)}x ${String(name)}`)
    console.log(`  ${r.name.padEnd(12)} ${fmt(r.mbps)} MiB/s${ratios.length === 0 ? '' : ` (${ratios.join(', ')})`}, server CPU ${fmt(r.cpu, 2)} s per GiB; ` +
      `per round: ${r.seconds.map((s) => fmt(s, 2)).join(' ')} s`)
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.join(here, 'big-body.ts')) {
  const dists = process.argv.slice(2)
  const named = dists.length === 0 ? { proxy: path.join(here, '..', 'dist') } : Object.fromEntries(dists.map((d, i) => [String.fromCharCode(65 + i), d]))
  const main = async (): Promise<void> => {
    printBigBody(await benchBigBody(makeTmpDir(), named, Number(process.env.BENCH_ROUNDS ?? 3)))
  }
  main().then(async () => { await cleanup(); process.exit(0) }, async (error: unknown) => { console.error(error); await cleanup(); process.exit(1) })
}

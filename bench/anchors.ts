/**
 * nginx and Varnish beside the proxy (issue #13's anchor columns), when installed: each caches
 * the same bench origin on a loopback port, started here and stopped by PID with the rest.
 * nginx: proxy_cache with proxy_cache_lock and upstream keep-alive, like ../shared/anchors;
 * Varnish: its builtin VCL with the origin as the only backend, 256 MB malloc storage.
 * Their CPU per request counts the worker processes too (processTicks sums descendants).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { freePort, track, exited } from './processes.ts'
import { get, sleep } from './probe.ts'

export interface Anchor { name: 'nginx' | 'varnish', child: ChildProcess, port: number }

const START_TIMEOUT_MS = 10_000

function installed (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

export function anchorsInstalled (): string[] {
  return [installed('nginx') ? 'nginx' : '', installed('varnishd') ? 'varnish' : ''].filter((n) => n !== '')
}

function nginxConfig (dir: string, port: number, originPort: number): string {
  const temp = (name: string): string => path.join(dir, 'tmp', name)
  return `daemon off;
master_process on;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root root;' : ''}
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'nginx.error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  sendfile off; # on loopback, sendfile + tcp_nopush stalls 64 KiB answers (../shared/anchors)
  output_buffers 2 256k;
  keepalive_requests 1000000;
  proxy_cache_path ${path.join(dir, 'cache')} levels=1:2 keys_zone=bench:16m max_size=2g inactive=60m use_temp_path=off;
  upstream origin { server 127.0.0.1:${originPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      proxy_buffering on;
      proxy_max_temp_file_size 0;
      add_header X-Cache $upstream_cache_status always;
    }
  }
}
`
}

async function answering (anchor: Anchor, output: () => string): Promise<Anchor> {
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (exited(anchor.child)) throw new Error(`${anchor.name} exited at start: ${output()}`)
    try {
      await get(`http://127.0.0.1:${anchor.port}/1k`, 1000)
      return anchor
    } catch {
      await sleep(100)
    }
  }
  throw new Error(`${anchor.name} did not answer within ${START_TIMEOUT_MS} ms: ${output()}`)
}

/** Starts nginx (one worker, like the proxy's one process) caching the origin. */
export async function startNginx (tmpDir: string, originPort: number, workers = 1): Promise<Anchor> {
  const dir = path.join(tmpDir, 'nginx')
  for (const sub of ['tmp', 'cache']) mkdirSync(path.join(dir, sub), { recursive: true })
  const port = await freePort()
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(conf, nginxConfig(dir, port, originPort).replace('worker_processes 1;', `worker_processes ${workers};`))
  let out = ''
  const child = track(spawn('nginx', ['-p', dir, '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] }))
  child.stderr?.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  return await answering({ name: 'nginx', child, port }, () => out)
}

/** Starts varnishd in the foreground (-F) with the origin as its backend. */
export async function startVarnish (tmpDir: string, originPort: number): Promise<Anchor> {
  const dir = path.join(tmpDir, 'varnish')
  mkdirSync(dir, { recursive: true })
  chmodSync(tmpDir, 0o755) // varnishd drops to its own user, which must reach its work directory
  chmodSync(dir, 0o755)
  const [port, admin] = [await freePort(), await freePort()]
  let out = ''
  const child = track(spawn('varnishd', ['-F', '-n', dir, '-a', `127.0.0.1:${port}`, '-T', `127.0.0.1:${admin}`,
    '-b', `127.0.0.1:${originPort}`, '-s', 'malloc,256m'], { stdio: ['ignore', 'pipe', 'pipe'] }))
  child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  child.stderr?.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  return await answering({ name: 'varnish', child, port }, () => out.slice(-2000))
}

/** The anchors that are installed and start here; one that fails to start is reported and left out. */
export async function startAnchors (tmpDir: string, originPort: number): Promise<Anchor[]> {
  const started: Anchor[] = []
  for (const name of anchorsInstalled()) {
    try {
      started.push(name === 'nginx' ? await startNginx(tmpDir, originPort) : await startVarnish(tmpDir, originPort))
    } catch (error) {
      console.log(`${name}: not compared (${error instanceof Error ? error.message.slice(0, 300) : String(error)})`)
    }
  }
  return started
}

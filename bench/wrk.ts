/**
 * Load rounds with wrk (C, one thread, epoll): unlike autocannon it leaves the server as the
 * bottleneck. `wrk -t1 -c50 -d<s>s --latency URL`, parsed for req/s, p50/p99 and errors; the
 * server's CPU is read from /proc before and after, and reported per request (µs).
 * Falls back to autocannon (bench/load-run.ts) when wrk is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { autocannon, CONNECTIONS, machineTicks, processTicks, CLK_TCK, type LoadResult } from './load-run.ts'
import { OutputTail, stopChild, track } from './processes.ts'

let wrkFound: boolean | undefined

/** True when `wrk` runs here; says how to install it (once) when it does not. */
export function haveWrk (): boolean {
  if (wrkFound === undefined) {
    const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8', timeout: 5000 })
    wrkFound = probe.error === undefined
    if (!wrkFound) {
      console.log('wrk not found: install it with `apt-get install wrk` (Debian/Ubuntu). Falling back to autocannon, ' +
        'which shares the cores with the servers and caps the figures; unique-URL runs (store fill) are skipped.')
    }
  }
  return wrkFound
}

/** Parses wrk's duration ("812.00us", "1.20ms", "2.01s") into milliseconds. */
export function parseDurationMs (text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim())
  if (match === null) return NaN
  const value = Number(match[1])
  return match[2] === 'us' ? value / 1000 : match[2] === 'ms' ? value : match[2] === 's' ? value * 1000 : value * 60_000
}

export interface WrkFigures { rps: number, requests: number, p50: number, p99: number, errors: number, timeouts: number, non2xx: number, bytes: number }

/** Reads the figures out of wrk's text output (with --latency). */
export function parseWrk (out: string): WrkFigures {
  const num = (re: RegExp): number => { const m = re.exec(out); return m === null ? NaN : Number(m[1]) }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const size = /requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB)\s+read/.exec(out)
  const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in /),
    p50: parseDurationMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99: parseDurationMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    errors: socket === null ? 0 : Number(socket[1]) + Number(socket[2]) + Number(socket[3]),
    timeouts: socket === null ? 0 : Number(socket[4]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    bytes: size === null ? NaN : Number(size[1]) * unit[size[2] as keyof typeof unit]
  }
}

let scriptDir: string | undefined
/** A wrk Lua script that asks for `<path><prefix>-<n>` with a fresh n on every request (cold URLs). */
export function uniqueUrlScript (prefix: string): string {
  scriptDir ??= mkdtempSync(path.join(os.tmpdir(), 'caching-proxy-wrk-'))
  const file = path.join(scriptDir, `${prefix}.lua`)
  writeFileSync(file, `local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, wrk.path .. "${prefix}-" .. n)\nend\n`)
  return file
}

export interface Load extends LoadResult { cpuUsPerRequest: number | null, tool: 'wrk' | 'autocannon' }

/** One load run against url (script: a wrk Lua script); the CPU of `server` is counted. */
export async function load (url: string, seconds: number, server: ChildProcess, script?: string): Promise<Load> {
  if (!haveWrk()) {
    if (script !== undefined) throw new Error('unique-URL load needs wrk')
    const r = await autocannon(url, seconds, server)
    return { ...r, tool: 'autocannon', cpuUsPerRequest: r.serverCpu === null || r.requests === 0 ? null : r.serverCpu / 100 * seconds * 1e6 / r.requests }
  }
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '--timeout', '10s', ...(script === undefined ? [] : ['-s', script]), url]
  const ticksBefore = processTicks(server.pid)
  const machineBefore = machineTicks()
  const wallBefore = performance.now()
  const child = track(spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] }))
  let out = ''
  const err = new OutputTail()
  child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk))
  const limit = setTimeout(() => child.kill('SIGKILL'), seconds * 1000 + 20_000)
  try {
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    const wallSeconds = (performance.now() - wallBefore) / 1000
    const ticksAfter = processTicks(server.pid)
    const machineAfter = machineTicks()
    if (code !== 0) throw new Error(`wrk ${url} exited with ${code}: ${err.lines.join('\n')}`)
    const f = parseWrk(out)
    if (!Number.isFinite(f.rps)) throw new Error(`wrk ${url}: unreadable output:\n${out}`)
    const cpuSeconds = ticksBefore === null || ticksAfter === null ? null : (ticksAfter - ticksBefore) / CLK_TCK
    return {
      tool: 'wrk',
      rps: f.rps,
      p50: f.p50,
      p99: f.p99,
      requests: f.requests,
      errors: f.errors,
      timeouts: f.timeouts,
      non2xx: f.non2xx,
      throughputMBs: f.bytes / wallSeconds / 1024 / 1024,
      serverCpu: cpuSeconds === null ? null : cpuSeconds / wallSeconds * 100,
      cpuUsPerRequest: cpuSeconds === null || !(f.requests > 0) ? null : cpuSeconds * 1e6 / f.requests,
      loadCpu: null,
      machineBusy: machineBefore === null || machineAfter === null || machineAfter.total === machineBefore.total
        ? null
        : (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total) * 100
    }
  } finally {
    clearTimeout(limit)
    await stopChild(child)
  }
}

/** Load rounds: autocannon in its own process, with the server's and the machine's CPU read from /proc. */
import { fork, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { LoadMessage } from './load.ts'
import { here, OutputTail, stopChild, track } from './processes.ts'

export const CONNECTIONS = 50

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux; figures are null elsewhere)

export const CLK_TCK = 100 // USER_HZ; 100 on every Linux we care about

/** utime + stime of pid and of its descendants (nginx and Varnish work in child processes). */
export function processTicks (pid: number | undefined): number | null {
  if (pid === undefined) return null
  const own = ownTicks(pid)
  if (own === null) return null
  return childPids(pid).reduce((sum, child) => sum + (processTicks(child) ?? 0), own)
}

function ownTicks (pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12]) // utime + stime (fields 14, 15)
  } catch {
    return null
  }
}

function childPids (pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter((p) => p !== '').map(Number))
  } catch {
    return []
  }
}

export function machineTicks (): { busy: number, total: number } | null {
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

export interface LoadResult {
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
export async function autocannon (url: string, seconds: number, server: ChildProcess): Promise<LoadResult> {
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

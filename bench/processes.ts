/** The bench's child processes (servers, load generators) and their clean-up: every child is stopped by PID. */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { isListeningMessage } from './bodies.ts'
import { get, sleep } from './probe.ts'
import { workerEnv } from '../src/worker-env.ts'

export const here = path.dirname(fileURLToPath(import.meta.url))
const serverScript = path.join(here, '..', 'dist', 'src', 'server.js')
const START_TIMEOUT_MS = 20_000

const children = new Set<ChildProcess>()
let tmpDir: string | undefined

export function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

export function exited (child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

export async function stopChild (child: ChildProcess): Promise<void> {
  if (exited(child)) return
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const hard = setTimeout(() => { if (!exited(child)) child.kill('SIGKILL') }, 3000)
  await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5000))])
  clearTimeout(hard)
}

const stoppers = new Set<() => Promise<void>>()

/** Something cleanup() must also stop (a detached PM2 daemon); the returned function forgets it. */
export function onCleanup (stop: () => Promise<void>): () => void {
  stoppers.add(stop)
  return () => { stoppers.delete(stop) }
}

let cleanedUp = false
let interrupted = false
export async function cleanup (): Promise<void> {
  if (cleanedUp) return
  cleanedUp = true
  await Promise.all([...[...stoppers].map(async (stop) => { await stop().catch(() => {}) }), ...[...children].map(stopChild)])
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

export async function freePort (): Promise<number> {
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

/** Forks a bench/*.ts server (`env` added to this process's) and resolves with the port it reports over IPC. */
export async function forkServer (script: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ child: ChildProcess, port: number }> {
  const child = track(fork(path.join(here, script), args, {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
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
export class OutputTail {
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

/**
 * The built proxy, one worker, on a free port; `env` overrides the bench defaults (e.g. CACHE_STORE);
 * `script` runs another build's server.js (A/B of two builds).
 */
export async function startProxy (dir: string, env: Record<string, string> = {}, script = serverScript): Promise<{ child: ChildProcess, port: number, output: OutputTail }> {
  if (!existsSync(script)) throw new Error(`${script} is missing: run npm run build`)
  const port = await freePort()
  const output = new OutputTail()
  const child = track(spawn(process.execPath, [script], {
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
      WORKERS: '1',
      ...workerEnv(), // what ecosystem.config.cjs gives every worker
      ...env
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

/** A proxy from another build (`dist`/src/server.js, for A/B runs) with its own SQLite file `<name>.sqlite` in `dir`. */
export async function startBuild (dist: string, dir: string, name: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess, port: number, output: OutputTail }> {
  return await startProxy(dir, { CACHE_STORE: `sqlite://${path.join(dir, `${name}.sqlite`)}`, ...env }, path.resolve(dist, 'src', 'server.js'))
}

/** A private temporary directory for this run, removed by cleanup(). */
export function makeTmpDir (): string {
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'caching-proxy-bench-'))
  return tmpDir
}

export function wasInterrupted (): boolean {
  return interrupted
}

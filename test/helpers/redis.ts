import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './process.ts'

export const REDIS_SERVER = '/usr/bin/redis-server'

/** Why Redis tests cannot run here (skip with it), or false. */
export const noRedis: string | false = existsSync(REDIS_SERVER) ? false : `${REDIS_SERVER} is missing (apt-get install redis-server; .ci/run does)`

/** A redis-server this test started on a loopback port, without persistence; stopped by PID when the test ends. */
export interface RedisServer {
  port: number
  url: string
  pid: () => number | undefined
  /** SIGKILLs it (no shutdown), and waits for it to exit. */
  kill: () => Promise<void>
  /** Starts it again on the same port (empty: nothing was saved). */
  restart: () => Promise<void>
}

/** Starts one; `owner.after` (a TestContext, or node:test's `after` hook) stops it. */
export async function startRedis (owner: { after: (fn: () => Promise<void>) => void } | ((fn: () => Promise<void>) => void), extraArgs: string[] = []): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined
  let output = ''
  const launch = async (): Promise<void> => {
    output = ''
    const started = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] })
    started.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    started.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child = started
    await waitForPing(port, 10_000, () => started.exitCode !== null ? `redis-server exited: ${output}` : undefined)
  }
  const kill = async (): Promise<void> => {
    const running = child
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGKILL')
    await exited
  }
  if (typeof owner === 'function') owner(kill)
  else owner.after(kill)
  await launch()
  return { port, url: `redis://127.0.0.1:${port}`, pid: () => child?.pid, kill, restart: launch }
}

/** Sends PING until redis answers PONG, for at most `timeoutMs`. */
async function waitForPing (port: number, timeoutMs: number, dead: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const why = dead()
    if (why !== undefined) throw new Error(why)
    if (await ping(port)) return
    await sleep(20)
  }
  throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`)
}

function ping (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(500, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/** Sends one command (inline protocol) and returns the raw reply text. */
export function redisCommand (port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let reply = ''
    socket.setTimeout(2000, () => { socket.destroy(); reject(new Error(`redis ${command}: no answer`)) })
    socket.on('error', reject)
    socket.on('connect', () => socket.write(`${command}\r\nQUIT\r\n`))
    socket.on('data', (data) => { reply += data.toString() })
    socket.on('close', () => resolve(reply.replace(/\+OK\r\n$/, '')))
  })
}

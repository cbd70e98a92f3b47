import { createClient, RESP_TYPES, type RedisClientType } from '@redis/client'
import type { StoreLogger } from '../contract.ts'

/** Reconnect delays: 50 ms doubling up to 2 s, with jitter so that nodes do not reconnect in step. */
export function backoff (retries: number): number {
  const base = Math.min(50 * 2 ** Math.min(retries, 10), 2000)
  return Math.round(base / 2 + Math.random() * base / 2)
}

/** An outage is logged at most this often. */
const LOG_INTERVAL_MS = 60_000

/** Past this many commands without a reply (Redis stuck), calls reject without being sent. */
const MAX_IN_FLIGHT = 1000

/** After a timeout, Redis is pinged this often until it answers in time again (status() stays honest without traffic). */
const PROBE_MS = 250

/** Bytes stay Buffers (entries are binary); other replies are as node-redis decodes them. */
const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const

export type Client = RedisClientType
export type Reply = Buffer | number | null | Reply[]

/**
 * One connection to Redis, used through @redis/client directly: keyv's @keyv/redis can set
 * and get a value, but an entry must change together with its size, LRU rank and expiry
 * (one Lua script, scripts.ts), and leases, CLIENT LIST and pub/sub are beyond keyv's API.
 * Every command is bounded by `timeoutMs` and rejected at once while disconnected (no offline
 * queue: a request must never wait for Redis to come back); the client reconnects with backoff.
 */
export class Connection {
  readonly client: Client
  /** CLIENT ID of the current connection: leases name it so that a dead holder can be seen. */
  clientId = 0
  private lastLog = 0
  private down: string | undefined = 'connecting'
  private inFlight = 0
  /** Set when a command timed out, cleared by the next reply in time. */
  private slow: string | undefined
  private probing = false

  constructor (url: string, private readonly timeoutMs: number, private readonly role: string, private readonly log: StoreLogger | undefined) {
    this.client = createClient({
      url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: backoff, connectTimeout: Math.max(timeoutMs * 10, 1000) }
    }) as Client
    this.client.on('error', (error: Error) => { this.failed(error) })
    this.client.on('ready', () => { this.ready() })
  }

  /** Why the connection cannot be used, or undefined when it is ready. */
  get reason (): string | undefined {
    return this.client.isReady ? this.slow : (this.down ?? 'disconnected')
  }

  /** Connects in the background (retrying forever); resolves when ready or after `waitMs`, whichever is first. */
  async start (waitMs: number): Promise<void> {
    const connecting = this.client.connect().then(() => undefined, () => undefined)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([connecting, new Promise((resolve) => { timer = setTimeout(resolve, waitMs) })])
    clearTimeout(timer)
  }

  /** Runs one Lua script (EVAL) within the command timeout; rejects when Redis is down or slow. */
  async eval (script: string, args: Array<string | Buffer | number>): Promise<Reply> {
    return await this.command(['EVAL', script, '0', ...args.map((arg) => typeof arg === 'number' ? String(arg) : arg)])
  }

  /**
   * Runs one command within the command timeout. The timeout is ours: node-redis' own
   * `timeout` option only covers a command not yet written to the socket, so a stuck Redis
   * (SIGSTOP, a long script) would hold the caller forever. A late reply is dropped.
   */
  async command (args: Array<string | Buffer>): Promise<Reply> {
    if (this.inFlight >= MAX_IN_FLIGHT) throw new Error(`Redis: ${this.inFlight} commands wait for a reply`)
    this.inFlight++
    const sent = this.client.sendCommand(args, { typeMapping: BUFFERS }) as Promise<Reply>
    sent.then(() => { this.inFlight-- }, () => { this.inFlight-- })
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      // Rejected after one more I/O phase: a reply already received while this process was
      // busy (the timers phase runs before the socket is read) still counts.
      timer = setTimeout(() => {
        setImmediate(() => { reject(new Error(`Redis did not answer within ${this.timeoutMs} ms (REDIS_TIMEOUT_MS)`)) })
      }, this.timeoutMs)
    })
    try {
      const reply = await Promise.race([sent, late])
      this.slow = undefined
      return reply
    } catch (error) {
      if (this.client.isReady) {
        this.slow = (error as Error).message
        this.failed(error as Error)
        this.probe()
      }
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  /** Pings until a reply comes in time (clearing `slow`), or the connection is closed. */
  private probe (): void {
    if (this.probing) return
    this.probing = true
    const attempt = (): void => {
      if (!this.client.isOpen || this.slow === undefined) {
        this.probing = false
        return
      }
      this.command(['PING']).then(() => { this.probing = false }, () => { setTimeout(attempt, PROBE_MS).unref() })
    }
    setTimeout(attempt, PROBE_MS).unref()
  }

  private failed (error: Error): void {
    if (!this.client.isReady) this.clientId = 0 // a new connection gets a new id
    const first = this.down === undefined
    this.down = error.message
    const now = Date.now()
    if (!first && now - this.lastLog < LOG_INTERVAL_MS) return
    this.lastLog = now
    this.log?.warn({ err: error, role: this.role }, 'Redis cache store unreachable; serving from memory and origin, reconnecting (logged at most once a minute)')
  }

  private ready (): void {
    const was = this.down
    this.down = undefined
    this.slow = undefined
    if (was !== undefined && was !== 'connecting') this.log?.info({ role: this.role }, 'Redis cache store reachable again')
    // A subscribing connection may not send CLIENT ID (and holds no leases).
    if (this.role !== 'subscriber') this.client.sendCommand(['CLIENT', 'ID'], { timeout: 1000 }).then((id) => { this.clientId = Number(id) }, () => {})
  }

  /** Closes the connection (waiting up to 1 s for replies in flight); never throws nor hangs. */
  async close (): Promise<void> {
    if (!this.client.isOpen) return
    // Closing a client that is between reconnect attempts never resolves: destroy it.
    if (!this.client.isReady) {
      this.client.destroy()
      return
    }
    let timer: NodeJS.Timeout | undefined
    const closed = await Promise.race([
      this.client.close().then(() => true, () => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), 1000) })
    ])
    clearTimeout(timer)
    if (!closed && this.client.isOpen) this.client.destroy()
  }
}

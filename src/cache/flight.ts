import { PassThrough, type Readable } from 'node:stream'

/**
 * Request coalescing inside one process: the first miss for a key leads a "flight" to the
 * origin; later requests for the key wait for it and are answered as soon as its response
 * headers arrive, each with a stream of the body that replays what already came and then
 * follows the rest (no polling).
 */

/**
 * A response body read once from upstream and shared by every client that wants it (the
 * leader and the waiters of a flight). It keeps the bytes for replay and for storing, up
 * to `maxBytes`; a slow client slows the upstream read (backpressure); when the last
 * client goes away before the end, the upstream body is destroyed.
 */
export class BodyBroadcast {
  private readonly chunks: Buffer[] = []
  private readonly followers = new Set<PassThrough>()
  private bytes = 0
  private state: 'open' | 'ended' | 'failed' = 'open'
  private blocked = 0
  /**
   * The body's last byte so far, held back from the clients: they get it only once the
   * body is stored (or known not to be), so a client that has every byte of a response it
   * caused can count on every later request seeing what it saw.
   */
  private pending: Buffer | undefined
  /** Set when the body outgrew `maxBytes`: it can no longer be replayed or stored. */
  overflowed = false

  /**
   * `done` receives the whole body once it arrived complete, or undefined when it did not.
   * When it returns a promise (the body being stored), the clients get the last byte and the
   * end only once it settled (at most `holdMs`).
   */
  constructor (
    private readonly source: Readable,
    private readonly maxBytes: number,
    private readonly done: (body: Buffer | undefined) => Promise<void> | undefined,
    private readonly holdMs = 2000
  ) {}

  start (): void {
    this.source.on('data', (chunk: Buffer) => this.push(chunk))
    this.source.once('end', () => this.end())
    this.source.once('error', (error) => this.fail(error))
    this.source.once('close', () => { if (this.state === 'open') this.fail(new Error('upstream body closed early')) })
  }

  private push (chunk: Buffer): void {
    if (chunk.length === 0) return
    if (!this.overflowed) {
      this.bytes += chunk.length
      if (this.bytes > this.maxBytes) {
        this.overflowed = true
        this.chunks.length = 0
      } else {
        this.chunks.push(chunk)
      }
    }
    const held = this.pending
    this.pending = chunk.subarray(chunk.length - 1)
    const now = chunk.subarray(0, chunk.length - 1)
    for (const follower of this.followers) {
      if (held !== undefined) follower.write(held)
      if (!follower.write(now)) {
        this.blocked++
        this.source.pause()
        follower.once('drain', () => this.unblock())
        follower.once('close', () => this.unblock())
      }
    }
  }

  private unblock (): void {
    if (this.blocked > 0 && --this.blocked === 0) this.source.resume()
  }

  private end (): void {
    if (this.state !== 'open') return
    this.state = 'ended'
    const stored = this.done(this.overflowed ? undefined : Buffer.concat(this.chunks, this.bytes))
    const finish = (): void => {
      const held = this.pending
      this.pending = undefined
      for (const follower of this.followers) {
        if (held !== undefined) follower.write(held)
        follower.end()
      }
      this.followers.clear()
    }
    if (stored === undefined) finish()
    else within(stored, this.holdMs, undefined).then(finish)
  }

  private fail (error: Error): void {
    if (this.state !== 'open') return
    this.state = 'failed'
    for (const follower of this.followers) follower.destroy(error)
    this.followers.clear()
    this.chunks.length = 0
    this.done(undefined)
  }

  /** A stream of the whole body, or undefined when it can no longer be replayed from the start. */
  subscribe (): Readable | undefined {
    if (this.overflowed || this.state === 'failed') return undefined
    const stream = new PassThrough()
    const last = this.chunks.length - 1
    // While open, the held-back last byte reaches this follower with the others.
    for (let i = 0; i <= last; i++) {
      const chunk = this.chunks[i]
      stream.write(i === last && this.pending !== undefined && this.state === 'open' ? chunk.subarray(0, chunk.length - 1) : chunk)
    }
    if (this.state === 'ended') {
      stream.end()
      return stream
    }
    this.followers.add(stream)
    stream.once('close', () => {
      this.followers.delete(stream)
      // Nobody wants the rest: release the upstream request.
      if (this.followers.size === 0 && this.state === 'open') this.source.destroy()
    })
    return stream
  }
}

/** `promise`'s value, or `fallback` once `ms` have passed (or when it rejects): a wait that always ends. */
export function within<T> (promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms)
    timer.unref()
    promise.then(resolve, () => resolve(fallback)).finally(() => clearTimeout(timer))
  })
}

export type FlightOutcome<Head, Entry> =
  | { kind: 'response', head: Head, body: BodyBroadcast } // the leader's response, shareable
  | { kind: 'entry', entry: Entry } // a stored entry to answer from
  | { kind: 'alone' } // not shareable: each waiter goes to the origin on its own
  | { kind: 'look-again' } // stored by another process: each waiter looks up its own variant
  | { kind: 'failed', error: Error } // the origin could not be reached: waiters get the same error, not a second wait

export class Flight<Head, Entry> {
  readonly outcome: Promise<FlightOutcome<Head, Entry>>
  private settle!: (outcome: FlightOutcome<Head, Entry>) => void
  settled = false

  constructor () {
    this.outcome = new Promise((resolve) => { this.settle = resolve })
  }

  resolve (outcome: FlightOutcome<Head, Entry>): void {
    if (this.settled) return
    this.settled = true
    this.settle(outcome)
  }
}

/** The flights under way, by cache key. */
export class Flights<Head, Entry> {
  private readonly flights = new Map<string, Flight<Head, Entry>>()

  get (key: string): Flight<Head, Entry> | undefined {
    return this.flights.get(key)
  }

  start (key: string): Flight<Head, Entry> {
    const flight = new Flight<Head, Entry>()
    this.flights.set(key, flight)
    return flight
  }

  /** Ends a flight: later requests for the key look in the cache again. */
  finish (key: string, flight: Flight<Head, Entry>, outcome: FlightOutcome<Head, Entry> = { kind: 'alone' }): void {
    flight.resolve(outcome)
    if (this.flights.get(key) === flight) this.flights.delete(key)
  }
}

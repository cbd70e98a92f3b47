import type { IncomingHttpHeaders } from 'node:http'
import { evaluateReuse, type FreshnessOptions } from '../cache/freshness.ts'
import { Flights, within } from '../cache/flight.ts'
import type { CacheStore } from '../store/index.ts'
import type { Lookup } from './lookup.ts'
import type { StoreCalls } from './store-calls.ts'
import { ALONE, type Cached, type CacheState, type Outcome, type SharedHead } from './types.ts'

const REMOTE_POLL_MS = 10

/**
 * One fetch per key: inside the worker through flights (src/cache/flight.ts), across workers
 * through a lease in the shared store. Every wait here ends (after the lease time at most).
 */
export class Coalescing {
  readonly flights = new Flights<SharedHead, Cached>()
  /** Settles (and is replaced) when another process announces a change: remote waiters look at once. */
  private wake = Coalescing.signal()

  constructor (
    private readonly store: CacheStore,
    private readonly lookup: Lookup,
    private readonly calls: StoreCalls,
    private readonly freshness: FreshnessOptions,
    /** How long a lease lives, and the longest any wait lasts. */
    readonly leaseMs: number
  ) {
    store.onRemoteChange(() => {
      const { notify } = this.wake
      this.wake = Coalescing.signal()
      notify()
    })
  }

  private static signal (): { changed: Promise<void>, notify: () => void } {
    let notify = (): void => {}
    const changed = new Promise<void>((resolve) => { notify = resolve })
    return { changed, notify }
  }

  /** The outcome of the flight under way for `key`, or undefined when there is none. */
  join (key: string): Promise<Outcome> | undefined {
    const flight = this.flights.get(key)
    return flight === undefined ? undefined : within(flight.outcome, this.leaseMs, ALONE)
  }

  /** Ends this request's flight (waiters get `outcome`) and releases its lease once `after` settles. */
  settle (state: CacheState, outcome: Outcome, after: Promise<void> = Promise.resolve()): void {
    if (state.flight !== undefined) this.flights.finish(state.storeKey, state.flight, outcome)
    state.flight = undefined
    if (state.lease === true) {
      state.lease = false
      const key = state.storeKey
      after.then(() => this.calls.track(this.store.releaseLease(key), 'lease'))
    }
  }

  /**
   * Makes this request the one that fetches its key: leads a flight, and takes the lease
   * unless another process holds it, in which case it waits for that process's entry.
   * Resolves to that entry, or undefined when this request goes to the origin.
   * `onClientGone` registers what to do if the client leaves first.
   */
  async lead (state: CacheState, headers: IncomingHttpHeaders, onClientGone: (listener: () => void) => void): Promise<Cached | undefined> {
    // The flight is this request's from now on. Whatever happens to the request (answered,
    // failed, or its client gone before the origin answered, when reply-from calls nothing
    // back), the flight ends with it.
    const mine = this.flights.start(state.storeKey)
    state.flight = mine
    onClientGone(() => { if (state.flight !== undefined && !state.flight.settled) this.settle(state, ALONE) })
    let leased: boolean
    try {
      leased = await this.store.acquireLease(state.storeKey, this.leaseMs)
    } catch (error) {
      this.calls.failed(error, 'lease')
      return undefined // a broken store: lead in this process only
    }
    if (leased) {
      state.lease = true
      // The client left while the lease was being taken: give it back at once.
      if (mine.settled) this.settle(state, ALONE)
      return undefined
    }
    // Another process is fetching this key: wait for it to store the response.
    const remote = await this.waitForRemote(state, headers)
    state.flight = undefined
    // Waiters here may want other variants than the one found for this request: they look for their own.
    this.flights.finish(state.storeKey, mine, remote === undefined ? ALONE : { kind: 'look-again' })
    return remote
  }

  /** A fresh entry for the request, stored by another process since `state.requestTime`. */
  private async storedElsewhere (state: CacheState, headers: IncomingHttpHeaders): Promise<Cached | undefined> {
    const found = await this.lookup.find(state.key, headers, true)
    return found.cached !== undefined && found.cached.entry.responseTime >= state.requestTime - 1000 &&
      evaluateReuse(found.cached.fresh, headers, this.freshness) === 'fresh'
      ? found.cached
      : undefined
  }

  /**
   * Looks in the shared store while another process fetches the key, each time a change
   * notification arrives (Redis pub/sub, the SQLite change log) or REMOTE_POLL_MS passed;
   * the entry, or undefined when it gave up.
   */
  private async waitForRemote (state: CacheState, headers: IncomingHttpHeaders): Promise<Cached | undefined> {
    const deadline = Date.now() + this.leaseMs
    for (let round = 0; Date.now() < deadline; round++) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([new Promise((resolve) => { timer = setTimeout(resolve, REMOTE_POLL_MS) }), this.wake.changed])
      clearTimeout(timer)
      const found = await this.storedElsewhere(state, headers)
      if (found !== undefined) return found
      // The holder may have stored and let go since the look above: one more look decides.
      if (round % 5 === 4 && !(await this.store.hasLease(state.storeKey).catch(() => false))) return await this.storedElsewhere(state, headers)
    }
    return undefined
  }
}

import type { EngineLogger } from './types.ts'

const ERROR_LOG_INTERVAL_MS = 60_000

/**
 * The store calls nobody waits on (writes, deletes, lease releases): tracked so closing can
 * await them, their failures logged at most once a minute (the proxy then serves uncached).
 */
export class StoreCalls {
  private readonly pending = new Set<Promise<void>>()
  private lastErrorLog = 0
  /** How many store calls failed in this process (metrics). */
  errors = 0

  constructor (private readonly log: EngineLogger) {}

  failed (error: unknown, action: string): void {
    this.errors++
    const now = Date.now()
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) return
    this.lastErrorLog = now
    this.log.error({ err: error, action }, 'cache store failed; serving uncached (logged at most once a minute)')
  }

  /** `call`, settled (never rejects) and awaited by `settled()`. */
  track (call: Promise<void>, action: string): Promise<void> {
    const tracked: Promise<void> = call.catch((error) => this.failed(error, action)).finally(() => this.pending.delete(tracked))
    this.pending.add(tracked)
    return tracked
  }

  /** Resolves when every tracked call has settled. */
  async settled (): Promise<void> {
    await Promise.all(this.pending)
  }
}

import { noop } from '../settings.ts'
import type { Query } from './schema.ts'

/** Access times are written to the file at most this often... */
const FLUSH_MS = 1000
/** ...or as soon as this many distinct keys are waiting. */
const FLUSH_KEYS = 2000
/** Access times per UPDATE when flushing. */
const BATCH = 500

/** Sets accessed_at from [[key, stamp], ...] (JSON), never moving it back. */
const FLUSH = `UPDATE entry_meta SET accessed_at = t.at
  FROM (SELECT value ->> 0 AS key, value ->> 1 AS at FROM json_each(?)) AS t
  WHERE entry_meta.key = t.key AND entry_meta.accessed_at < t.at`

/**
 * Access stamps: epoch ms with a sub-millisecond counter, so that accesses within one
 * millisecond keep their order in this process (2^-10 ms steps are exact in a double).
 */
let lastMs = 0
let sameMs = 0
export function stamp (): number {
  const now = Date.now()
  if (now !== lastMs) {
    lastMs = now
    sameMs = 0
  } else if (sameMs < 1023) {
    sameMs++
  }
  return now + sameMs / 1024
}

/** The LRU order of a shared file: reads are stamped in memory and written in batches. */
export class AccessTimes {
  /** Access times not yet written: key → stamp. */
  private pending = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()
  private queued = false
  private stopped = false

  constructor (private readonly query: Query) {}

  start (): void {
    this.timer = setInterval(() => { this.flush().catch(noop) }, FLUSH_MS)
    this.timer.unref()
  }

  /** Records an access now; never throws. */
  touch (key: string): void {
    this.pending.set(key, stamp())
    if (this.pending.size >= FLUSH_KEYS && !this.queued && !this.stopped) {
      this.queued = true
      setImmediate(() => {
        this.queued = false
        this.flush().catch(noop)
      }).unref()
    }
  }

  /** Drops a pending access of `key` (it was just written or deleted). */
  forget (key: string): void {
    this.pending.delete(key)
  }

  /** Writes the pending access times; one flush at a time. A failed batch is dropped. */
  flush (): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.pending.size === 0) return
      const batch = [...this.pending]
      this.pending = new Map()
      for (let i = 0; i < batch.length; i += BATCH) {
        await this.query(FLUSH, JSON.stringify(batch.slice(i, i + BATCH)))
      }
    })
    this.chain = run.catch(noop)
    return run
  }

  /** No more batches by size; the timer stops (a last flush() is the caller's). */
  stop (): void {
    this.stopped = true
    if (this.timer !== undefined) clearInterval(this.timer)
  }
}

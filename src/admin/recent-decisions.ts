import type { CacheOutcome } from '../cache/outcome.ts'
import { MemoryTier } from '../store/memory-tier.ts'

/** What the cache did with the last response seen for a URL on this worker. */
export interface Decision {
  /** Epoch ms when the response was answered. */
  time: number
  method: string
  status: number
  outcome: CacheOutcome
  /** The variant key the request selected (the URL key when the response does not vary). */
  storeKey: string
}

/**
 * The last decision per URL key, bounded in count (least recently seen dropped first):
 * /_proxy/explain reads it. The memory tier's LRU map with every entry of size 1.
 */
export class RecentDecisions {
  private readonly items: MemoryTier<Decision>

  constructor (max: number) {
    this.items = new MemoryTier<Decision>(max)
  }

  record (key: string, decision: Decision): void {
    this.items.set(key, decision, 1)
  }

  get (key: string): Decision | undefined {
    return this.items.get(key)
  }

  get size (): number { return this.items.size }
}

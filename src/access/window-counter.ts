/**
 * Fixed-window counter per key (requests per client per window), bounded in keys.
 * For CONNECT requests, which bypass Fastify's routing and so @fastify/rate-limit's hook
 * (its store is private to the plugin).
 */
export class WindowCounter {
  private counts = new Map<string, number>()
  private windowStart = 0
  constructor (private readonly windowMs: number, private readonly maxKeys = 10_000, private readonly now = Date.now) {}

  /** Counts one more hit for `key` and returns the hits in the current window, this one included. */
  hit (key: string): number {
    const now = this.now()
    if (now - this.windowStart >= this.windowMs) {
      this.counts.clear()
      this.windowStart = now
    }
    const count = (this.counts.get(key) ?? 0) + 1
    // Past maxKeys, new keys are counted as if alone rather than growing without bound.
    if (this.counts.has(key) || this.counts.size < this.maxKeys) this.counts.set(key, count)
    return count
  }

  /** Milliseconds until the current window ends. */
  resetInMs (): number {
    return Math.max(0, this.windowStart + this.windowMs - this.now())
  }
}

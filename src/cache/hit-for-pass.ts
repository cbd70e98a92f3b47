/**
 * Keys whose last response could not be stored, remembered for a short while (Varnish's
 * "hit-for-pass"): requests for them go straight to the origin, side by side, with no
 * store read, no lease and no waiting behind one another. A storable response ends it.
 */
export class HitForPass {
  private readonly until = new Map<string, number>()

  constructor (private readonly ttlMs: number, private readonly maxKeys = 10_000) {}

  has (key: string, now = Date.now()): boolean {
    if (this.until.size === 0) return false
    const until = this.until.get(key)
    if (until === undefined) return false
    if (until > now) return true
    this.until.delete(key)
    return false
  }

  add (key: string, now = Date.now()): void {
    if (this.ttlMs <= 0) return
    this.until.delete(key) // re-inserted last: the Map's order is the order of expiry
    if (this.until.size >= this.maxKeys) {
      const oldest = this.until.keys().next().value
      if (oldest !== undefined) this.until.delete(oldest)
    }
    this.until.set(key, now + this.ttlMs)
  }

  delete (key: string): void {
    this.until.delete(key)
  }
}

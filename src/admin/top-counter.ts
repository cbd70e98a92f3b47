/**
 * Approximate top-N counts in bounded memory (the Space-Saving algorithm, Metwally et al.
 * 2005): at most `capacity` keys are tracked; a new key past that replaces the smallest
 * count and inherits it, so a key's count may be over-estimated by at most that minimum,
 * and any key more frequent than total/capacity is always kept. Hand-written: a dozen
 * lines, where the npm packages for it are unmaintained or pull in much more.
 */
export class TopCounter {
  private readonly counts = new Map<string, number>()

  constructor (private readonly capacity: number) {}

  add (key: string, by = 1): void {
    const count = this.counts.get(key)
    if (count !== undefined) {
      this.counts.set(key, count + by)
      return
    }
    if (this.counts.size < this.capacity) {
      this.counts.set(key, by)
      return
    }
    let smallest: string | undefined
    let min = Infinity
    for (const [name, n] of this.counts) {
      if (n < min) {
        min = n
        smallest = name
      }
    }
    this.counts.delete(smallest as string)
    this.counts.set(key, min + by)
  }

  /** The `n` largest, largest first (ties by key, so the order is stable). */
  top (n: number): Array<[string, number]> {
    return topOf(this.counts, n)
  }
}

export function topOf (counts: Map<string, number>, n: number): Array<[string, number]> {
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, n)
}

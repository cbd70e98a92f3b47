/** A least-recently-used map bounded by the total size of its values. */
export class MemoryTier<V> {
  private readonly items = new Map<string, { value: V, size: number }>()
  private bytes = 0
  private evictions = 0

  constructor (private readonly maxBytes: number) {}

  get size (): number { return this.items.size }
  get totalBytes (): number { return this.bytes }

  has (key: string): boolean {
    return this.items.has(key)
  }

  /** The value, marked as most recently used. */
  get (key: string): V | undefined {
    const item = this.items.get(key)
    if (item === undefined) return undefined
    // Re-insert to mark as most recently used (Map keeps insertion order).
    this.items.delete(key)
    this.items.set(key, item)
    return item.value
  }

  /** Stores a value, evicting the least recently used ones past maxBytes; a value larger than that is not kept. */
  set (key: string, value: V, size: number): void {
    this.delete(key)
    if (size > this.maxBytes) return
    this.items.set(key, { value, size })
    this.bytes += size
    for (const [oldest, item] of this.items) {
      if (this.bytes <= this.maxBytes) break
      this.items.delete(oldest)
      this.bytes -= item.size
      this.evictions++
    }
  }

  delete (key: string): boolean {
    const item = this.items.get(key)
    if (item === undefined) return false
    this.items.delete(key)
    this.bytes -= item.size
    return true
  }

  clear (): void {
    this.items.clear()
    this.bytes = 0
  }

  /** Keys and values, least recently used first (no reordering). */
  * entries (): IterableIterator<[string, V]> {
    for (const [key, item] of this.items) yield [key, item.value]
  }

  /** Entries evicted since the last call. */
  takeEvictions (): number {
    const count = this.evictions
    this.evictions = 0
    return count
  }
}

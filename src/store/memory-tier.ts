interface Item<V> { value: V, size: number, referenced: boolean }

/**
 * A map bounded by the total size of its values, evicting in least-recently-used order
 * approximated by CLOCK (second chance): a read only sets the item's `referenced` bit; when
 * room is needed, the oldest item is evicted unless its bit is set, in which case the bit
 * is cleared and the item moves to the young end. A hit costs a property write instead of
 * a Map delete + set (issue #13: ~2.4 µs per hit).
 */
export class MemoryTier<V> {
  private readonly items = new Map<string, Item<V>>()
  private bytes = 0
  private evictions = 0

  constructor (private readonly maxBytes: number) {}

  get size (): number { return this.items.size }
  get totalBytes (): number { return this.bytes }

  has (key: string): boolean {
    return this.items.has(key)
  }

  /** The value, marked as recently used. */
  get (key: string): V | undefined {
    const item = this.items.get(key)
    if (item === undefined) return undefined
    item.referenced = true
    return item.value
  }

  /** Stores a value, evicting the least recently used ones past maxBytes; a value larger than that is not kept. */
  set (key: string, value: V, size: number): void {
    this.delete(key)
    if (size > this.maxBytes) return
    this.items.set(key, { value, size, referenced: false })
    this.bytes += size
    if (this.bytes > this.maxBytes) this.evict(key)
  }

  /** Evicts down to maxBytes, never `kept` (the item just stored: it would otherwise go first when every other one was read). */
  private evict (kept: string): void {
    // Each item is given a second chance at most once per call: 2 × size rounds at most.
    let budget = 2 * this.items.size
    while (this.bytes > this.maxBytes && budget-- > 0) {
      const oldest = this.items.keys().next()
      if (oldest.done === true) break
      const key = oldest.value
      const item = this.items.get(key) as Item<V>
      this.items.delete(key)
      if (item.referenced || key === kept) {
        item.referenced = false
        this.items.set(key, item)
        continue
      }
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

  /** Keys and values, oldest first (no reordering). */
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

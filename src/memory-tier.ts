/** A least-recently-used map bounded by the total size of its values. */
export class MemoryTier<V> {
  private readonly items = new Map<string, { value: V, size: number }>()
  private bytes = 0

  constructor (private readonly maxBytes: number) {}

  get size (): number { return this.items.size }
  get totalBytes (): number { return this.bytes }

  get (key: string): V | undefined {
    const item = this.items.get(key)
    if (item === undefined) return undefined
    // Re-insert to mark as most recently used (Map keeps insertion order).
    this.items.delete(key)
    this.items.set(key, item)
    return item.value
  }

  set (key: string, value: V, size: number): void {
    this.delete(key)
    if (size > this.maxBytes) return
    this.items.set(key, { value, size })
    this.bytes += size
    for (const [oldest, item] of this.items) {
      if (this.bytes <= this.maxBytes) break
      this.items.delete(oldest)
      this.bytes -= item.size
    }
  }

  delete (key: string): void {
    const item = this.items.get(key)
    if (item === undefined) return
    this.items.delete(key)
    this.bytes -= item.size
  }

  clear (): void {
    this.items.clear()
    this.bytes = 0
  }
}

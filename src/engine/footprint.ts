/**
 * What a memory-tier entry really costs (issue #13: a 64 MiB bound counted in stored bytes let
 * 100k small entries take ~350 MB): the bytes its body keeps alive plus the objects a decoded
 * entry is made of (headers twice, freshness, parsed Cache-Control), estimated from the length
 * of its metadata. The constants were measured with V8's heap figures (see
 * test/engine/footprint.test.ts, which checks the estimate against a measurement).
 */

/**
 * Fixed cost per entry: the Cached, CacheEntry and Freshness objects, parsed directives, the
 * map slot, the body's own allocation, and what the heap and malloc keep beyond live bytes.
 */
export const ENTRY_OBJECTS_BYTES = 2048
/** Bytes per byte of stored metadata (JSON): header names and values as strings and objects. */
export const HEAP_PER_META_BYTE = 2

/**
 * A body that is a small view of a larger allocation (Node's 8 KiB pool, a chunk of a bigger
 * read) keeps all of it alive: such a body is copied into its own allocation first.
 */
export function ownBytes (body: Buffer): Buffer {
  if (body.buffer.byteLength <= 2 * body.length + 1024) return body
  const own = Buffer.allocUnsafeSlow(body.length)
  body.copy(own)
  return own
}

/** Estimated bytes held by one entry kept under `key`: `storedBytes` is its encoded length. */
export function footprint (key: string, body: Buffer, storedBytes: number): number {
  const meta = Math.max(0, storedBytes - body.length)
  // Bodies live outside the heap: malloc rounding and fragmentation add about an eighth.
  return ENTRY_OBJECTS_BYTES + key.length + HEAP_PER_META_BYTE * meta + Math.ceil(body.buffer.byteLength * 9 / 8)
}

import { createHash } from 'node:crypto'

/** The sizes the benchmark loads, by path. */
export const SIZES: Record<string, number> = {
  '/1k': 1024,
  '/64k': 64 * 1024,
  '/1m': 1024 * 1024
}

export const CACHE_CONTROL = 'public, max-age=3600'

export interface Body {
  bytes: Buffer
  etag: string
}

const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_')

/**
 * Deterministic bytes (a fixed xorshift sequence): the origin and the bare server send identical
 * bodies. Printable ASCII on purpose: autocannon appends every body chunk to a JS string
 * (`req.body += chunk`), and UTF-8-decoding random binary costs it far more than ASCII does,
 * which would make the load generator, not the servers, the limit at /64k and /1m.
 */
export function makeBody (size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size)
  let state = (0x9e3779b9 ^ size) | 0
  for (let i = 0; i < size; i++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    bytes[i] = ALPHABET[state & 63]
  }
  return bytes
}

export function makeBodies (): Map<string, Body> {
  const bodies = new Map<string, Body>()
  for (const [path, size] of Object.entries(SIZES)) {
    const bytes = makeBody(size)
    const etag = `"${createHash('sha1').update(bytes).digest('hex').slice(0, 16)}"`
    bodies.set(path, { bytes, etag })
  }
  return bodies
}

/** Headers both the origin and the bare server send with a body. */
export function bodyHeaders (body: Body): Record<string, string> {
  return {
    'content-type': 'application/octet-stream',
    'content-length': String(body.bytes.length),
    'cache-control': CACHE_CONTROL,
    etag: body.etag
  }
}

/** A child server tells its parent where it listens with this IPC message. */
export interface ListeningMessage {
  listening: number
}

export function isListeningMessage (message: unknown): message is ListeningMessage {
  return typeof message === 'object' && message !== null &&
    typeof (message as { listening?: unknown }).listening === 'number'
}

/** Children exit when their parent goes away (IPC channel closes), even if it was killed hard. */
export function exitWithParent (close: () => void): void {
  process.on('disconnect', close)
  process.on('SIGTERM', close)
  process.on('SIGINT', close)
}

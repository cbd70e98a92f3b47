/** Bumped whenever the stored layout changes: rows of another version are refused. */
export const ENTRY_FORMAT_VERSION = 1
const MAGIC = Buffer.from('CPX')
const HEADER_BYTES = MAGIC.length + 1 + 4

export type StoredHeaders = Record<string, string | string[]>

/**
 * A whole stored response: what is needed to answer a request without the origin.
 * A Vary index record (`vary` set, empty body) names the request headers that select
 * the variant stored under its own key (see vary.ts).
 */
export interface CacheEntry {
  url: string
  status: number
  headers: StoredHeaders
  /** Epoch ms when the request went upstream and when the response headers came back (RFC 9111 §4.2.3). */
  requestTime: number
  responseTime: number
  vary?: string[]
  body: Buffer
}

export class EntryDecodeError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'EntryDecodeError'
  }
}

/** Encodes an entry as: "CPX" | version byte | u32 meta length | meta JSON | body bytes. */
export function encodeEntry (entry: CacheEntry): Buffer {
  const { body, ...fields } = entry
  const meta = Buffer.from(JSON.stringify({ ...fields, bodyLength: body.length }))
  const head = Buffer.allocUnsafe(HEADER_BYTES)
  MAGIC.copy(head, 0)
  head.writeUInt8(ENTRY_FORMAT_VERSION, MAGIC.length)
  head.writeUInt32BE(meta.length, MAGIC.length + 1)
  return Buffer.concat([head, meta, body], HEADER_BYTES + meta.length + body.length)
}

/** Decodes a stored row; throws EntryDecodeError for anything that is not a whole entry of this version. */
export function decodeEntry (raw: unknown): CacheEntry {
  if (!Buffer.isBuffer(raw)) throw new EntryDecodeError('stored value is not binary')
  if (raw.length < HEADER_BYTES || !raw.subarray(0, MAGIC.length).equals(MAGIC)) throw new EntryDecodeError('not a cache entry')
  const version = raw.readUInt8(MAGIC.length)
  if (version !== ENTRY_FORMAT_VERSION) throw new EntryDecodeError(`entry format version ${version}, expected ${ENTRY_FORMAT_VERSION}`)
  const metaLength = raw.readUInt32BE(MAGIC.length + 1)
  if (HEADER_BYTES + metaLength > raw.length) throw new EntryDecodeError('truncated entry')
  let meta: Omit<CacheEntry, 'body'> & { bodyLength: number }
  try {
    meta = JSON.parse(raw.toString('utf8', HEADER_BYTES, HEADER_BYTES + metaLength))
  } catch {
    throw new EntryDecodeError('unreadable entry metadata')
  }
  if (typeof meta !== 'object' || meta === null || typeof meta.url !== 'string' || typeof meta.status !== 'number' ||
      typeof meta.headers !== 'object' || meta.headers === null || typeof meta.requestTime !== 'number' ||
      typeof meta.responseTime !== 'number' || (meta.vary !== undefined && !Array.isArray(meta.vary))) {
    throw new EntryDecodeError('incomplete entry metadata')
  }
  const body = raw.subarray(HEADER_BYTES + metaLength)
  if (body.length !== meta.bodyLength) throw new EntryDecodeError(`body is ${body.length} bytes, expected ${meta.bodyLength}`)
  const { bodyLength, ...fields } = meta
  return { ...fields, body }
}

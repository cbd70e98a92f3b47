import type { IncomingHttpHeaders } from 'node:http'
import type { StoredHeaders } from '../cache/entry.ts'
import { stripHopByHop } from '../http/headers.ts'
import { normalizeResponseHeaders } from '../http/response-headers.ts'

/** An upstream response's headers, normalised once for both the client and the cache. */
export interface UpstreamHeaders {
  /** Without hop-by-hop fields, as they came. */
  stripped: IncomingHttpHeaders
  /** Normalised (src/http/response-headers.ts); undefined when they cannot be (`error` says why: a 502). */
  headers?: StoredHeaders
  error?: Error
}

export function upstreamHeaders (raw: IncomingHttpHeaders): UpstreamHeaders {
  const stripped = stripHopByHop(raw)
  try {
    return { stripped, headers: normalizeResponseHeaders(stripped) }
  } catch (error) {
    return { stripped, error: error as Error }
  }
}

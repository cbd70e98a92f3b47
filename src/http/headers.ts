import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

export const PROXY_NAME = 'caching-proxy'
export const VIA = `1.1 ${PROXY_NAME}`

// RFC 9110 §7.6.1: hop-by-hop fields, plus those a Connection header lists.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'proxy-authentication-info'
])

type Headers = IncomingHttpHeaders | OutgoingHttpHeaders

function isHopByHop (name: string, listed: Set<string>): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || listed.has(name)
}

/** Returns a copy of `headers` without hop-by-hop fields (RFC 9110 §7.6.1). */
export function stripHopByHop<T extends Headers> (headers: T): T {
  const listed = new Set<string>()
  const connection = headers.connection
  if (connection !== undefined) {
    for (const token of String(connection).split(',')) listed.add(token.trim().toLowerCase())
  }
  const out: Headers = {}
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    if (value !== undefined && !isHopByHop(name, listed)) out[name] = value
  }
  return out as T
}

/** Appends this proxy to a Via header value (RFC 9110 §7.6.3). */
export function appendVia (existing: string | string[] | number | undefined): string {
  if (existing === undefined || existing === '') return VIA
  return `${Array.isArray(existing) ? existing.join(', ') : String(existing)}, ${VIA}`
}

/** Appends this cache's member to a Cache-Status header (RFC 9211 §2: the last member is nearest the client). */
export function appendCacheStatus (existing: string | string[] | number | undefined, member: string): string {
  const own = `${PROXY_NAME}; ${member}`
  if (existing === undefined || existing === '') return own
  return `${Array.isArray(existing) ? existing.join(', ') : String(existing)}, ${own}`
}

// Request headers some origins and frameworks act on although no cache keys on them:
// forwarded before, any of them could make one client's request poison the shared entry.
const UNKEYED = [
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-server', 'x-forwarded-proto', 'x-forwarded-scheme',
  'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-ssl', 'x-host', 'x-original-url', 'x-original-host',
  'x-rewrite-url', 'x-http-method-override', 'x-http-method', 'x-method-override', 'x-real-ip'
]

/** The headers of a request as they go upstream: no hop-by-hop or unkeyed override fields, plus Via. */
export function upstreamRequestHeaders (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = stripHopByHop(headers)
  for (const name of UNKEYED) delete out[name]
  for (const name of Object.keys(out)) if (name.startsWith('x-forwarded-')) delete out[name]
  out.via = appendVia(headers.via)
  return out
}

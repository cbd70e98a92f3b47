import createError from '@fastify/error'

export const BadUpstreamUrl = createError<[string]>('CPX_BAD_UPSTREAM_URL', '%s', 400)
export const UpstreamUnreachable = createError<[string, string]>('CPX_UPSTREAM_UNREACHABLE', 'upstream %s could not be reached: %s', 502)
export const UpstreamTimeout = createError<[string, number]>('CPX_UPSTREAM_TIMEOUT', 'upstream %s did not answer within %d ms', 504)
export const UpstreamForbidden = createError<[string]>('CPX_UPSTREAM_FORBIDDEN', '%s', 403)
export const LoopDetected = createError<[string]>('CPX_LOOP_DETECTED', '%s', 508)
export const ClientForbidden = createError<[string]>('CPX_CLIENT_FORBIDDEN', 'client %s is not allowed to use this proxy (ALLOW_CLIENTS)', 403)
export const NotFound = createError<[string]>('CPX_NOT_FOUND', '%s', 404)
export const CredentialsRequired = createError('CPX_CREDENTIALS_REQUIRED', 'valid proxy credentials are required', 401)
export const ProxyCredentialsRequired = createError('CPX_PROXY_CREDENTIALS_REQUIRED', 'valid proxy credentials are required', 407)
export const UrlTooLong = createError<[number]>('CPX_URL_TOO_LONG', 'the request target is longer than %d bytes', 414)
export const BodyTooLarge = createError<[number]>('CPX_BODY_TOO_LARGE', 'the request body is larger than %d bytes', 413)
export const MethodNotAllowed = createError<[string]>('CPX_METHOD_NOT_ALLOWED', 'method %s is not supported', 405)
export const MalformedRequest = createError<[string]>('CPX_MALFORMED_REQUEST', 'malformed request: %s', 400)
export const NotCached = createError('CPX_NOT_CACHED', 'not in cache and the request said only-if-cached', 504)
export const UnsupportedVersion = createError<[string]>('CPX_HTTP_VERSION', 'HTTP/%s requests are not supported', 505)

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT'])

interface Coded { code?: string, message?: string, cause?: unknown, statusCode?: number, rule?: string }

/** Finds the innermost coded error of a chain of `cause`s. */
function rootCause (error: unknown): { code: string, message: string, error: Coded | undefined } {
  let current = error as Coded | undefined
  let found: { code: string, message: string, error: Coded | undefined } = { code: 'UNKNOWN', message: String((current?.message) ?? error), error: undefined }
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (typeof current.code === 'string') found = { code: current.code, message: current.message ?? current.code, error: current }
    current = current.cause as Coded | undefined
  }
  return found
}

/**
 * The one place where upstream failures become HTTP errors: a refused address → 403, an
 * oversized request body → 413, timeouts → 504, everything else (DNS, refused, reset, TLS) → 502.
 */
export function upstreamError (error: unknown, upstream: string, timeoutMs: number): Error {
  const { code, message, error: cause } = rootCause(error)
  if (code === 'CPX_UPSTREAM_FORBIDDEN' || code === 'CPX_BODY_TOO_LARGE') {
    const mapped = code === 'CPX_BODY_TOO_LARGE' ? cause as Error : new UpstreamForbidden(message)
    return Object.assign(mapped, { upstream, upstreamCode: code, rule: cause?.rule })
  }
  const mapped = TIMEOUT_CODES.has(code)
    ? new UpstreamTimeout(upstream, timeoutMs)
    : new UpstreamUnreachable(upstream, code === 'UNKNOWN' ? message : `${code} (${message})`)
  mapped.cause = error
  return Object.assign(mapped, { upstream, upstreamCode: code })
}

const UPSTREAM_STREAM_CODES = /^(UND_ERR_|HPE_)|^(ECONNRESET|EPIPE|ECONNABORTED)$/

/**
 * An upstream response body that failed after reply-from handed it over (a bad chunk size,
 * a reset) reaches Fastify's error handler as a bare error: it is a 502, not our 500.
 */
export function upstreamStreamError (error: unknown, upstream: string): Error | undefined {
  const found = rootCause(error)
  const named = (error as { name?: string }).name
  if (!UPSTREAM_STREAM_CODES.test(found.code) && named !== 'HTTPParserError') return undefined
  const code = found.code === 'UNKNOWN' ? String(named) : found.code
  const message = found.message
  const mapped = new UpstreamUnreachable(upstream, `${code} (${message})`)
  mapped.cause = error
  return Object.assign(mapped, { upstream, upstreamCode: code })
}

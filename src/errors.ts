import createError from '@fastify/error'

export const BadUpstreamUrl = createError<[string]>('CPX_BAD_UPSTREAM_URL', '%s', 400)
export const UpstreamUnreachable = createError<[string, string]>('CPX_UPSTREAM_UNREACHABLE', 'upstream %s could not be reached: %s', 502)
export const UpstreamTimeout = createError<[string, number]>('CPX_UPSTREAM_TIMEOUT', 'upstream %s did not answer within %d ms', 504)
export const BadUpstreamResponse = createError<[string, string]>('CPX_BAD_UPSTREAM_RESPONSE', 'upstream %s sent an invalid response: %s', 502)

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT'])

/** Finds the innermost error code of a chain of `cause`s. */
function rootCode (error: unknown): { code: string, message: string } {
  let current = error as { code?: string, message?: string, cause?: unknown } | undefined
  let found = { code: 'UNKNOWN', message: String((current?.message) ?? error) }
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (typeof current.code === 'string') found = { code: current.code, message: current.message ?? current.code }
    current = current.cause as typeof current
  }
  return found
}

/**
 * The one place where upstream socket failures become HTTP errors:
 * timeouts → 504, everything else (DNS, refused, reset, TLS) → 502.
 */
export function upstreamError (error: unknown, upstream: string, timeoutMs: number): Error {
  const { code, message } = rootCode(error)
  const mapped = TIMEOUT_CODES.has(code)
    ? new UpstreamTimeout(upstream, timeoutMs)
    : new UpstreamUnreachable(upstream, code === 'UNKNOWN' ? message : `${code} (${message})`)
  mapped.cause = error
  return Object.assign(mapped, { upstream, upstreamCode: code })
}

import { validateHeaderName, validateHeaderValue, type ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'

/**
 * Interim (1xx) responses from the origin reach the client (RFC 9110 §15.2: a proxy forwards
 * them, unless it asked for them itself). A request that wants them carries its client's
 * ServerResponse under `INTERIM_TARGET` in the headers it hands to the dispatcher (a symbol
 * key: never serialised, and copied along by reply-from's `Object.assign`); the interceptor
 * takes it out before the request goes upstream. Requests without it (background refreshes)
 * forward nothing. They are never stored: undici hands the cache the final response only.
 *
 * Node's server can write only some of them: `102 Processing` (`writeProcessing`) and
 * `103 Early Hints` (`writeEarlyHints`, which sends nothing without a valid `Link`). A `100
 * Continue` is the client's own business with Node (sent when it asks with `Expect`), and
 * other codes have no API: those are dropped.
 */
export const INTERIM_TARGET = Symbol('caching-proxy.interimTarget')

type Headers = Record<string | symbol, unknown>

/** `headers` with the client's response attached, for the interceptor below. */
export function withInterimTarget<T extends object> (headers: T, target: ServerResponse | undefined): T {
  return target === undefined ? headers : { ...headers, [INTERIM_TARGET]: target }
}

// RFC 9110 §7.6.1: hop-by-hop fields are not forwarded, on interim responses either.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length'])

/** The fields of a 103 that Node may write: end-to-end, valid names and values. */
export function earlyHintsFields (headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const connection = new Set(String(headers.connection ?? '').split(',').map((name) => name.trim().toLowerCase()))
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (value === undefined || HOP_BY_HOP.has(lower) || connection.has(lower)) continue
    try {
      validateHeaderName(lower)
      for (const one of [value].flat()) validateHeaderValue(lower, one)
    } catch {
      continue
    }
    out[lower] = value
  }
  return out
}

/** Writes one interim response to the client, if it is still waiting for its response head. */
export function forwardInterim (target: ServerResponse, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
  if (target.headersSent || target.writableEnded || target.destroyed) return
  // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
  if (target.req.httpVersionMajor === 1 && target.req.httpVersionMinor === 0) return
  try {
    if (statusCode === 102) target.writeProcessing()
    else if (statusCode === 103) {
      const hints = earlyHintsFields(headers)
      if (hints.link !== undefined) target.writeEarlyHints(hints)
    }
  } catch {
    // Node refuses a Link it cannot validate: the hint is dropped, the final response still comes.
  }
}

/** The undici interceptor (`agent.compose(interimResponses)`). */
export const interimResponses: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
  const headers = opts.headers as Headers | undefined
  const target = headers?.[INTERIM_TARGET] as ServerResponse | undefined
  if (target === undefined || headers === undefined) return dispatch(opts, handler)
  const { [INTERIM_TARGET]: _target, ...rest } = headers
  return dispatch({ ...opts, headers: rest as Dispatcher.DispatchOptions['headers'] }, {
    onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
    onRequestUpgrade: (controller, statusCode, upgradeHeaders, socket) => handler.onRequestUpgrade?.(controller, statusCode, upgradeHeaders, socket),
    onResponseStart: (controller, statusCode, responseHeaders, statusMessage) => {
      if (statusCode < 200) forwardInterim(target, statusCode, responseHeaders as Record<string, string | string[] | undefined>)
      handler.onResponseStart?.(controller, statusCode, responseHeaders, statusMessage)
    },
    onResponseData: (controller, data) => handler.onResponseData?.(controller, data),
    onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
    onResponseError: (controller, error) => handler.onResponseError?.(controller, error)
  })
}

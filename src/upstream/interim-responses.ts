import { validateHeaderName, validateHeaderValue, type ServerResponse } from 'node:http'
import { Dispatcher } from 'undici'

/**
 * Interim (1xx) responses from the origin reach the client (RFC 9110 §15.2: a proxy forwards
 * them, unless it asked for them itself). A request that wants them carries its client's
 * ServerResponse under `INTERIM_TARGET` in the headers it hands to the dispatcher (a symbol
 * key: never serialised, and copied along by reply-from's `Object.assign`; undici reads only
 * string keys); `InterimForwarding` below hands it a callback. Requests without it (background refreshes)
 * forward nothing. They are never stored: undici hands the cache the final response only.
 *
 * Node's server can write only some of them: `102 Processing` (`writeProcessing`) and
 * `103 Early Hints` (`writeEarlyHints`, which sends nothing without a valid `Link`). A `100
 * Continue` is the client's own business with Node (sent when it asks with `Expect`), and
 * other codes have no API: those are dropped.
 */
export const INTERIM_TARGET = Symbol('caching-proxy.interimTarget')

type Headers = Record<string | symbol, unknown>

/** Attaches the client's response to `headers` (an object of this request's own), for InterimForwarding below. */
export function withInterimTarget<T extends object> (headers: T, target: ServerResponse | undefined): T {
  if (target !== undefined) (headers as Headers)[INTERIM_TARGET] = target
  return headers
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

/**
 * The upstream dispatcher with interim responses forwarded: a request carrying a target gets
 * undici's own `onInfo` callback (its request API parses a 1xx's fields for it). Not an
 * interceptor (`agent.compose`): composing wraps every request's handler twice (legacy to new
 * handler API and back) and re-encodes every response's header fields into Buffers in between,
 * which cost a measurable share of an uncacheable miss (issue #13, README Performance).
 */
export class InterimForwarding extends Dispatcher {
  constructor (private readonly inner: Dispatcher) {
    super()
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.inner.dispatch(opts, handler)
  }

  override close (...args: unknown[]): never {
    return (this.inner.close as (...a: unknown[]) => never)(...args)
  }

  override destroy (...args: unknown[]): never {
    return (this.inner.destroy as (...a: unknown[]) => never)(...args)
  }

  override request (...args: unknown[]): never {
    const [opts, callback] = args as [Dispatcher.RequestOptions, unknown]
    // The target stays in the headers: undici reads only their string keys (never sends it).
    const target = (opts.headers as Headers | undefined)?.[INTERIM_TARGET] as ServerResponse | undefined
    const asked = target === undefined
      ? opts
      : { ...opts, onInfo: (info: { statusCode: number, headers: Record<string, string | string[]> }) => forwardInterim(target, info.statusCode, info.headers) }
    return (Dispatcher.prototype.request as (...a: unknown[]) => never).call(this, asked, callback)
  }
}

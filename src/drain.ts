import net from 'node:net'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

/**
 * Stops `server` taking connections and waits until every connection it has has ended,
 * without failing a request: resolves true when all ended, false after `timeoutMs`.
 *
 * Node's `http.Server.close()` (and so `fastify.close()`) destroys idle keep-alive sockets
 * at once (Node >= 19). A client that reuses such a socket may have its next request
 * already on the wire: it gets ECONNRESET, and clients such as wrk or undici retry
 * nothing. So only the listener is closed here (in a cluster worker, that tells the
 * primary to hand new connections to other workers), and each open connection ends
 * the HTTP way:
 * - every response from now on says `Connection: close` (RFC 9112 §9.6), so the socket
 *   is closed right after it, and the client knows not to send on it again;
 * - a socket that stays idle is closed by the server's keep-alive timeout, the one it
 *   announced (`Keep-Alive: timeout=N`): clients stop reusing a socket before then.
 * In-flight requests finish normally; a response already under way when draining starts
 * leaves its socket open, and the next request on it gets the `Connection: close`.
 */
export function drainConnections (server: Server, timeoutMs: number): Promise<boolean> {
  const lastResponse = (_req: IncomingMessage, res: ServerResponse): void => {
    if (!res.headersSent) res.setHeader('connection', 'close')
  }
  server.prependListener('request', lastResponse)

  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs)
    timer.unref()
    // net.Server's close, not http.Server's: the latter also destroys idle sockets.
    net.Server.prototype.close.call(server, () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

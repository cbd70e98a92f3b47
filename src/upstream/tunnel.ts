import net, { type LookupFunction, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'

export interface DialOptions {
  host: string
  port: number
  /** DNS for names (the address guard's guardedLookup); IP literals are judged before dialling. */
  lookup: LookupFunction
  /** DNS and TCP handshake together must finish within this. */
  timeoutMs: number
}

/** Opens the TCP connection a tunnel goes to; rejects with the socket's coded error, or ETIMEDOUT. */
export async function dial (options: DialOptions): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.host, port: options.port, lookup: options.lookup, noDelay: true })
    const timer = setTimeout(() => {
      socket.destroy(Object.assign(new Error(`connect timed out after ${options.timeoutMs} ms`), { code: 'ETIMEDOUT' }))
    }, options.timeoutMs)
    const fail = (error: Error): void => {
      clearTimeout(timer)
      reject(error)
    }
    socket.once('error', fail)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.removeListener('error', fail)
      resolve(socket)
    })
  })
}

export interface TunnelStats {
  /** Bytes from the client to the upstream (including the bytes that came with the CONNECT request). */
  bytesUp: number
  /** Bytes from the upstream to the client. */
  bytesDown: number
  /** Why it ended: 'end' (a side closed cleanly), 'idle', 'closed' (shut down by the proxy), or an error code. */
  reason: string
}

export interface Tunnel {
  /** Ends the tunnel now (app close); `reason` is reported to onClose. */
  destroy: (reason: string) => void
}

/** After one side has closed, the other has this long to flush and close. */
const LINGER_MS = 5000

/**
 * Pipes two sockets both ways until both close. A FIN from one side is passed on (pipe
 * ends the other), so what was written before it still arrives; once one side has
 * closed, the other gets LINGER_MS to finish. An error on either side or an idle
 * period destroys both at once, and `onClose` runs exactly once, when both are closed.
 */
export function splice (client: Duplex, upstream: Socket, head: Buffer, idleMs: number, onClose: (stats: TunnelStats) => void): Tunnel {
  let reason: string | undefined
  let bytesUp = head.length
  let bytesDown = 0
  let last = Date.now()
  const finish = (why: string): void => {
    reason ??= why
    client.destroy()
    upstream.destroy()
  }
  const onError = (error: NodeJS.ErrnoException): void => { finish(error.code ?? 'error') }
  client.on('error', onError)
  upstream.on('error', onError)
  client.on('data', (chunk: Buffer) => { bytesUp += chunk.length; last = Date.now() })
  upstream.on('data', (chunk: Buffer) => { bytesDown += chunk.length; last = Date.now() })

  // One timer for the pair: either direction moving counts as activity.
  let lingerUntil = Infinity
  const timer = setInterval(() => {
    const now = Date.now()
    if (now - last >= idleMs) finish('idle')
    else if (now >= lingerUntil) finish('end')
  }, Math.max(10, Math.min(idleMs / 4, 1000)))
  timer.unref()

  let closed = 0
  const onSideClosed = (other: Duplex) => (): void => {
    if (++closed === 2) {
      clearInterval(timer)
      onClose({ bytesUp, bytesDown, reason: reason ?? 'end' })
      return
    }
    other.end()
    lingerUntil = Date.now() + Math.min(LINGER_MS, idleMs)
  }
  client.once('close', onSideClosed(upstream))
  upstream.once('close', onSideClosed(client))

  if (head.length > 0) upstream.write(head)
  client.pipe(upstream)
  upstream.pipe(client)
  return { destroy: finish }
}

import net, { type AddressInfo } from 'node:net'
import { parseFields } from './raw-http.ts'

/** One request as the raw origin read it off the socket. */
export interface RawOriginRequest {
  method: string
  url: string
  /** Lower-case names; repeated fields joined with ', '. */
  headers: Record<string, string>
  body: Buffer
}

/**
 * What the origin writes for one request: byte parts written `gapMs` apart (after
 * `delayMs`), then `end` says how the exchange finishes: 'keep' leaves the connection
 * open for the next request, 'close' ends it (FIN), 'reset' sends a TCP RST, 'stall'
 * writes nothing more and keeps the socket open until the client gives up.
 */
export interface RawAnswer {
  parts: Buffer[]
  delayMs?: number
  gapMs?: number
  end: 'keep' | 'close' | 'reset' | 'stall'
}

export type RawOriginHandler = (request: RawOriginRequest) => RawAnswer

export interface RawOrigin {
  port: number
  host: string
  /** Every request received, in order. */
  requests: RawOriginRequest[]
  /** Requests whose target was `url` (path including the query). */
  hits (url: string): number
  /** Replaces the handler (e.g. a known-good answer for a verification pass). */
  setHandler (handler: RawOriginHandler): void
  close (): Promise<void>
}

/** A response head from a status line and header lines (each [name, value] written as given). */
export function rawHead (statusLine: string, headers: Array<[string, string]>): Buffer {
  return Buffer.from([statusLine, ...headers.map(([name, value]) => `${name}: ${value}`)].join('\r\n') + '\r\n\r\n', 'latin1')
}

/** A chunked body: `body` cut into chunks of at most `size` bytes, then the last chunk. */
export function chunked (body: Buffer, size = 4096): Buffer {
  const parts: Buffer[] = []
  for (let at = 0; at < body.length; at += size) {
    const piece = body.subarray(at, at + size)
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'))
  }
  parts.push(Buffer.from('0\r\n\r\n'))
  return Buffer.concat(parts)
}

const MAX_HEAD_BYTES = 64 * 1024

/**
 * An origin on 127.0.0.1 that speaks HTTP/1.1 by hand, so it can send what no HTTP
 * server library would: repeated, huge or malformed fields, odd status codes,
 * conflicting framing, early closes and resets. It reads requests in order on each
 * kept-alive connection (bodies framed by Content-Length only) and answers each with
 * what `handler` returns. Every socket is destroyed by `close()`.
 */
export async function startRawOrigin (handler: RawOriginHandler): Promise<RawOrigin> {
  let current = handler
  const requests: RawOriginRequest[] = []
  const sockets = new Set<net.Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const later = (fn: () => void, ms: number): void => {
    const timer = setTimeout(() => { timers.delete(timer); fn() }, ms)
    timers.add(timer)
  }

  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffer = Buffer.alloc(0)
    let busy = false

    const answer = (reply: RawAnswer): void => {
      busy = true
      const write = (i: number): void => {
        if (socket.destroyed) return
        if (i < reply.parts.length) {
          socket.write(reply.parts[i])
          later(() => write(i + 1), i + 1 < reply.parts.length ? reply.gapMs ?? 0 : 0)
          return
        }
        if (reply.end === 'close') socket.end()
        else if (reply.end === 'reset') socket.resetAndDestroy()
        else if (reply.end === 'keep') { busy = false; next() }
        // 'stall': nothing more; the peer's timeout ends it.
      }
      later(() => write(0), reply.delayMs ?? 0)
    }

    const next = (): void => {
      if (busy || socket.destroyed) return
      const end = buffer.indexOf('\r\n\r\n')
      if (end === -1) {
        if (buffer.length > MAX_HEAD_BYTES) socket.destroy()
        return
      }
      const lines = buffer.subarray(0, end).toString('latin1').split('\r\n')
      const [method = '', url = ''] = lines[0].split(' ')
      const headers = parseFields(lines.slice(1))
      const length = Number(headers['content-length'] ?? 0)
      if (buffer.length < end + 4 + length) return
      const body = buffer.subarray(end + 4, end + 4 + length)
      buffer = buffer.subarray(end + 4 + length)
      const request = { method, url, headers, body: Buffer.from(body) }
      requests.push(request)
      let reply: RawAnswer
      try {
        reply = current(request)
      } catch {
        reply = { parts: [rawHead('HTTP/1.1 500 Handler Failed', [['Content-Length', '0']])], end: 'close' }
      }
      answer(reply)
    }

    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      next()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const port = (server.address() as AddressInfo).port
  return {
    port,
    host: `127.0.0.1:${port}`,
    requests,
    hits: (url) => requests.filter((r) => r.url === url).length,
    setHandler: (h) => { current = h },
    close: async () => {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

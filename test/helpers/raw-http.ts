import net, { type AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'

/** One HTTP response read off a raw socket. `status` is 0 when the socket closed (or timed out) without one. */
export interface RawResponse {
  status: number
  /** Lower-case header names; repeated headers joined with ', '. */
  headers: Record<string, string>
  body: Buffer
  /** The body as latin1 text (byte-exact, whatever it holds). */
  text: string
  /** Every byte the server sent on this socket. */
  raw: Buffer
  /** The server closed the connection (within `closeWaitMs` after the response). */
  closed: boolean
  /** The response was cut short: the socket closed before the declared body was complete. */
  truncated: boolean
  /** No answer and no close within `timeoutMs`. */
  timedOut: boolean
  /** Milliseconds from the first byte written until the response was complete or the socket closed. */
  elapsedMs: number
}

export interface SendOptions {
  /** Give up (and destroy the socket) after this long; default 5000 ms. */
  timeoutMs?: number
  /** After a complete response, wait this long for the server to close the socket; default 0. */
  closeWaitMs?: number
  /** The request was HEAD: the response has no body whatever its headers say. */
  head?: boolean
  /** Half-close the socket after writing (the client sends FIN). */
  end?: boolean
}

interface Parsed {
  status: number
  headers: Record<string, string>
  body: Buffer
  complete: boolean
}

/** Header lines as lower-case names; a repeated field's values joined with ', '. */
export function parseFields (lines: string[]): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  return headers
}

/** Parses the first final (non-1xx) response in `data`, as far as it goes. */
export function parseResponse (data: Buffer, head = false): Parsed | undefined {
  let offset = 0
  for (let round = 0; round < 10; round++) {
    const end = data.indexOf('\r\n\r\n', offset)
    if (end === -1) return undefined
    const lines = data.subarray(offset, end).toString('latin1').split('\r\n')
    const match = /^HTTP\/\d\.\d (\d{3})/.exec(lines[0])
    if (match === null) return { status: -1, headers: {}, body: Buffer.alloc(0), complete: true }
    const status = Number(match[1])
    const headers = parseFields(lines.slice(1))
    const bodyStart = end + 4
    if (status >= 100 && status < 200 && status !== 101) {
      offset = bodyStart
      continue
    }
    const rest = data.subarray(bodyStart)
    if (head || status === 204 || status === 304 || status === 101) return { status, headers, body: Buffer.alloc(0), complete: true }
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const chunks: Buffer[] = []
      let at = 0
      for (let n = 0; n < 100_000; n++) {
        const lineEnd = rest.indexOf('\r\n', at)
        if (lineEnd === -1) return { status, headers, body: Buffer.concat(chunks), complete: false }
        const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16)
        if (Number.isNaN(size)) return { status, headers, body: Buffer.concat(chunks), complete: false }
        if (size === 0) {
          const complete = rest.indexOf('\r\n\r\n', lineEnd) !== -1 || rest.subarray(lineEnd).toString('latin1') === '\r\n\r\n'
          return { status, headers, body: Buffer.concat(chunks), complete: complete || rest.length >= lineEnd + 4 }
        }
        if (rest.length < lineEnd + 2 + size + 2) {
          chunks.push(rest.subarray(lineEnd + 2, Math.min(rest.length, lineEnd + 2 + size)))
          return { status, headers, body: Buffer.concat(chunks), complete: false }
        }
        chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
        at = lineEnd + 2 + size + 2
      }
      return { status, headers, body: Buffer.concat(chunks), complete: false }
    }
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length'])
      return { status, headers, body: rest.subarray(0, length), complete: rest.length >= length }
    }
    // Delimited by the close of the connection.
    return { status, headers, body: rest, complete: false }
  }
  return undefined
}

/**
 * Writes `data` (one buffer, or several parts written `gapMs` apart) to a fresh TCP
 * connection and reads one response. Never rejects: a socket that closes without an
 * answer gives `status: 0`.
 */
export async function send (port: number, data: string | Buffer | Array<string | Buffer>, options: SendOptions & { gapMs?: number } = {}): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 5000
  const closeWaitMs = options.closeWaitMs ?? 0
  const parts = Array.isArray(data) ? data : [data]
  return await new Promise<RawResponse>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const received: Buffer[] = []
    let closed = false
    let settled = false
    let responded: Parsed | undefined
    const started = Date.now()
    let elapsedMs = 0
    const timers: NodeJS.Timeout[] = []

    const finish = (timedOut: boolean): void => {
      if (settled) return
      settled = true
      for (const timer of timers) clearTimeout(timer)
      const raw = Buffer.concat(received)
      const parsed = parseResponse(raw, options.head)
      socket.destroy()
      resolve({
        status: parsed === undefined ? 0 : parsed.status,
        headers: parsed?.headers ?? {},
        body: parsed?.body ?? Buffer.alloc(0),
        text: (parsed?.body ?? Buffer.alloc(0)).toString('latin1'),
        raw,
        closed,
        truncated: parsed !== undefined && !parsed.complete && (parsed.headers['content-length'] !== undefined || /chunked/i.test(parsed.headers['transfer-encoding'] ?? '')),
        timedOut,
        elapsedMs: elapsedMs === 0 ? Date.now() - started : elapsedMs
      })
    }

    socket.on('data', (chunk: Buffer) => {
      received.push(chunk)
      if (responded !== undefined) return
      const parsed = parseResponse(Buffer.concat(received), options.head)
      if (parsed !== undefined && parsed.complete) {
        responded = parsed
        elapsedMs = Date.now() - started
        if (closeWaitMs === 0) finish(false)
        else timers.push(setTimeout(() => finish(false), closeWaitMs))
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      closed = true
      if (elapsedMs === 0) elapsedMs = Date.now() - started
      finish(false)
    })
    timers.push(setTimeout(() => finish(true), timeoutMs))

    socket.once('connect', () => {
      parts.forEach((part, i) => {
        timers.push(setTimeout(() => {
          if (socket.destroyed) return
          socket.write(part)
          if (i === parts.length - 1 && options.end === true) socket.end()
        }, i * (options.gapMs ?? 0)))
      })
    })
  })
}

/** A request head: `GET <target> HTTP/1.1`, a Host and the given header lines, then an empty line. */
export function requestHead (method: string, target: string, headers: Array<[string, string]> = [], host = 'proxy.test'): string {
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${host}`, ...headers.map(([name, value]) => `${name}: ${value}`)]
  return lines.join('\r\n') + '\r\n\r\n'
}

/** `GET <target>` with Connection: close. */
export function get (target: string, headers: Array<[string, string]> = []): string {
  return requestHead('GET', target, [['Connection', 'close'], ...headers])
}

/** Parses the JSON body of a response, or undefined. */
export function json (response: RawResponse): Record<string, unknown> | undefined {
  try {
    return JSON.parse(response.body.toString('utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/** Starts `app` on 127.0.0.1 (port 0 unless given) and returns its port. */
export async function listen (app: FastifyInstance, port = 0): Promise<number> {
  await app.listen({ port, host: '127.0.0.1' })
  return (app.server.address() as AddressInfo).port
}

/** A resolver (buildApp's `resolver` option) from a table of names; other names fail like DNS does (ENOTFOUND). */
export function tableResolver (table: Record<string, string | string[]>, calls: string[] = []): (hostname: string) => Promise<Array<{ address: string, family: number }>> {
  return async (hostname) => {
    calls.push(hostname)
    const name = hostname.toLowerCase().replace(/\.$/, '')
    let entry = table[name]
    if (entry === undefined) {
      // '*.suffix' keys match any name below the suffix.
      const wildcard = Object.keys(table).find((key) => key.startsWith('*.') && name.endsWith(key.slice(1)))
      entry = wildcard === undefined ? undefined as unknown as string : table[wildcard]
    }
    if (entry === undefined) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname })
    }
    return (Array.isArray(entry) ? entry : [entry]).map((address) => ({ address, family: net.isIP(address) }))
  }
}

export interface RawConnection {
  /** Writes one request on this (kept-alive) connection and reads its response. */
  exchange (data: string | Buffer, options?: { timeoutMs?: number, head?: boolean }): Promise<RawResponse>
  /** The server closed the connection. */
  closed (): boolean
  /** Resolves true once the server closes the connection, false after `timeoutMs`. */
  waitClosed (timeoutMs: number): Promise<boolean>
  destroy (): void
}

/** A client connection kept open across requests (keep-alive), for tests that need the same socket twice. */
export async function connect (port: number): Promise<RawConnection> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  let buffer = Buffer.alloc(0)
  let isClosed = false
  let onData: (() => void) | undefined
  const closeWaiters: Array<() => void> = []
  socket.on('error', () => {})
  socket.on('data', (chunk: Buffer) => { buffer = Buffer.concat([buffer, chunk]); onData?.() })
  socket.on('close', () => {
    isClosed = true
    onData?.()
    for (const waiter of closeWaiters.splice(0)) waiter()
  })
  return {
    closed: () => isClosed,
    destroy: () => { socket.destroy() },
    waitClosed: async (timeoutMs) => {
      if (isClosed) return true
      return await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(isClosed), timeoutMs)
        closeWaiters.push(() => { clearTimeout(timer); resolve(true) })
      })
    },
    exchange: async (data, options = {}) => {
      const started = Date.now()
      buffer = Buffer.alloc(0)
      return await new Promise<RawResponse>((resolve) => {
        const done = (timedOut: boolean): void => {
          clearTimeout(timer)
          onData = undefined
          const parsed = parseResponse(buffer, options.head)
          const body = parsed?.body ?? Buffer.alloc(0)
          resolve({
            status: parsed?.status ?? 0,
            headers: parsed?.headers ?? {},
            body,
            text: body.toString('latin1'),
            raw: buffer,
            closed: isClosed,
            truncated: parsed !== undefined && !parsed.complete,
            timedOut,
            elapsedMs: Date.now() - started
          })
        }
        const timer = setTimeout(() => done(true), options.timeoutMs ?? 5000)
        onData = () => {
          const parsed = parseResponse(buffer, options.head)
          if ((parsed !== undefined && parsed.complete) || isClosed) done(false)
        }
        if (isClosed) done(false)
        else socket.write(data)
      })
    }
  }
}

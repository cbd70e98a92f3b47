import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { parseResponse } from './raw-http.ts'

/** A self-signed certificate for 127.0.0.1 and localhost (openssl CLI), written into `dir`. */
export function selfSignedCert (dir: string): { key: Buffer, cert: Buffer } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
}

export interface TlsOrigin {
  port: number
  /** Requests received (method and url), in order. */
  requests: Array<{ method: string, url: string }>
  /** TLS connections accepted. */
  connections: () => number
  close: () => Promise<void>
}

/** An HTTPS origin on 127.0.0.1 answering every request with `handler`, recording them. */
export async function startTlsOrigin (tls: { key: Buffer, cert: Buffer }, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TlsOrigin> {
  const requests: Array<{ method: string, url: string }> = []
  let connections = 0
  const server = https.createServer(tls, (req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '' })
    handler(req, res)
  })
  server.on('secureConnection', () => { connections++ })
  server.keepAliveTimeout = 500
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    connections: () => connections,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

export interface ConnectAttempt {
  socket: net.Socket
  /** The proxy's answer to CONNECT (status 0 if the socket closed or timed out first). */
  status: number
  headers: Record<string, string>
  body: string
  /** Bytes received after the CONNECT answer (the tunnel's first bytes), if any. */
  rest: Buffer
}

/**
 * Sends `CONNECT target` (plus `extra` bytes in the same write) on a raw socket and
 * reads the proxy's answer. The socket stays open, paused, for the caller, who must destroy it.
 */
export async function sendConnect (port: number, target: string, headers: Array<[string, string]> = [], extra: Buffer | string = '', timeoutMs = 5000): Promise<ConnectAttempt> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  const head = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`, ...headers.map(([n, v]) => `${n}: ${v}`)].join('\r\n') + '\r\n\r\n'
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(extra)]))
  let data = Buffer.alloc(0)
  return await new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      socket.removeListener('data', onData)
      const end = data.indexOf('\r\n\r\n')
      const parsed = parseResponse(data)
      if (parsed === undefined || end === -1) {
        resolve({ socket, status: 0, headers: {}, body: '', rest: Buffer.alloc(0) })
        return
      }
      const rest = parsed.status === 200 ? data.subarray(end + 4) : Buffer.alloc(0)
      resolve({ socket, status: parsed.status, headers: parsed.headers, body: parsed.body.toString('utf8'), rest })
    }
    const onData = (chunk: Buffer): void => {
      data = Buffer.concat([data, chunk])
      const parsed = parseResponse(data)
      if (parsed !== undefined && (parsed.status === 200 || parsed.complete)) {
        socket.pause()
        done()
      }
    }
    const timer = setTimeout(done, timeoutMs)
    socket.on('data', onData)
    socket.once('close', done)
  })
}

/** Resolves when the socket has closed, or false after `timeoutMs`. */
export async function closed (socket: net.Socket, timeoutMs = 3000): Promise<boolean> {
  if (socket.destroyed && socket.closed) return true
  return await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs)
    socket.once('close', () => { clearTimeout(timer); resolve(true) })
  })
}

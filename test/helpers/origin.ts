import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface OriginRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

export interface Origin {
  port: number
  /** host:port, the form used after the proxy's own address: `/${origin.host}/path` */
  host: string
  /** Every request the origin received, in order. */
  requests: OriginRequest[]
  /** How many requests reached `path` (path including the query). */
  hits (path: string): number
  /** TCP connections accepted so far (a refused request must not even connect). */
  connections (): number
  close (): Promise<void>
}

export interface OriginOptions {
  /** Address to listen on; default 127.0.0.1 ('::1' for IPv6 tests). */
  host?: string
  /** Answers paths without a route; default 404 "not found". */
  fallback?: OriginHandler
}

/** A fallback that answers 200 (no-store) with a JSON echo of what arrived: method, url, headers, body length. */
export const echo: OriginHandler = (req, res, body) => {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, length: body.length }))
}

/**
 * The tests' one HTTP origin: a real server on 127.0.0.1 (port 0) that records every request
 * and counts TCP connections. `routes` maps a path (without query) to a handler; other paths
 * go to `options.fallback` (default 404).
 */
export async function startOrigin (routes: Record<string, OriginHandler> = {}, options: OriginOptions = {}): Promise<Origin> {
  const host = options.host ?? '127.0.0.1'
  const requests: OriginRequest[] = []
  let connections = 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body })
      const path = (req.url ?? '/').split('?')[0]
      // An explicit Date: Node caches its own for up to a second, which fake clocks outrun.
      res.setHeader('date', new Date().toUTCString())
      const handler = routes[path] ?? options.fallback
      if (handler === undefined) {
        res.statusCode = 404
        res.end('not found')
        return
      }
      handler(req, res, body)
    })
  })
  server.on('connection', () => { connections++ })
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  const port = (server.address() as AddressInfo).port
  return {
    port,
    host: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    requests,
    hits: (path) => requests.filter((r) => r.url === path).length,
    connections: () => connections,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** The origin with the JSON echo for unrouted paths (what SSRF, fuzz and hostile-input tests look at). */
export async function echoOrigin (routes: Record<string, OriginHandler> = {}, host?: string): Promise<Origin> {
  return await startOrigin(routes, { host, fallback: echo })
}

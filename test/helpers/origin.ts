import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface OriginRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
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
  close (): Promise<void>
}

/**
 * A real HTTP origin on 127.0.0.1 (port 0) that records every request it receives.
 * `routes` maps a path (without query) to a handler; unknown paths answer 404.
 */
export async function startOrigin (routes: Record<string, OriginHandler>): Promise<Origin> {
  const requests: OriginRequest[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      const path = (req.url ?? '/').split('?')[0]
      // An explicit Date: Node caches its own for up to a second, which fake clocks outrun.
      res.setHeader('date', new Date().toUTCString())
      const handler = routes[path]
      if (handler === undefined) {
        res.statusCode = 404
        res.end('not found')
        return
      }
      handler(req, res, body)
    })
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    host: `127.0.0.1:${port}`,
    requests,
    hits: (path) => requests.filter((r) => r.url === path).length,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

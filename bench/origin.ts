import { createServer } from 'node:http'
import { makeBodies, bodyHeaders, CACHE_CONTROL, exitWithParent } from './bodies.ts'

/**
 * Benchmark origin (node:http). /1k /64k /1m: fixed bytes, cacheable for an hour.
 * /slow?k=...: answers after 200 ms. /stats: JSON count of requests per URL (path + query).
 * /nostore, /nostore/<anything>: the 1 KiB body with `no-store` (uncacheable misses). /fill/<anything>: a fresh 1 KiB
 * body, cacheable (store fill); neither is counted, so /stats stays small under load.
 */
const bodies = makeBodies()
const counts = new Map<string, number>()
const SLOW_MS = 200

const server = createServer((req, res) => {
  const url = req.url ?? '/'
  const path = url.split('?', 1)[0]
  if (path === '/stats') {
    const payload = JSON.stringify(Object.fromEntries(counts))
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(payload)
    return
  }
  const small = bodies.get('/1k')
  const noStore = path === '/nostore' || path.startsWith('/nostore/')
  if (small !== undefined && (noStore || path.startsWith('/fill/'))) {
    res.writeHead(200, { ...bodyHeaders(small), ...(noStore ? { 'cache-control': 'no-store' } : {}) })
    res.end(req.method === 'HEAD' ? undefined : small.bytes)
    return
  }
  counts.set(url, (counts.get(url) ?? 0) + 1)
  const body = bodies.get(path)
  if (body !== undefined) {
    res.writeHead(200, bodyHeaders(body))
    res.end(req.method === 'HEAD' ? undefined : body.bytes)
    return
  }
  if (path === '/slow') {
    const timer = setTimeout(() => {
      const text = `slow ${url}\n`
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': String(Buffer.byteLength(text)),
        'cache-control': CACHE_CONTROL
      })
      res.end(text)
    }, SLOW_MS)
    res.on('close', () => clearTimeout(timer))
    return
  }
  res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' })
  res.end('not found\n')
})
server.keepAliveTimeout = 60_000

server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('origin: no TCP address')
  process.send?.({ listening: address.port })
})

exitWithParent(() => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 1000).unref()
})

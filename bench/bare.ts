import { openSync, readSync, writeSync } from 'node:fs'
import Fastify from 'fastify'
import { makeBodies, bodyHeaders, exitWithParent } from './bodies.ts'

/**
 * Bare Fastify returning the origin's bytes from memory: the ceiling of the Node stack.
 * With BARE_AS_HIT=<file> it also does what any memory-tier hit of the proxy must: one 8-byte
 * `pread` of a shared word (the read-your-writes check across workers) and the cache's own
 * response headers: the floor of a cache hit on this stack.
 */
const bodies = makeBodies()
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
const asHit = process.env.BARE_AS_HIT
const fd = asHit === undefined || asHit === '' ? undefined : openSync(asHit, 'w+')
const word = Buffer.alloc(8)
if (fd !== undefined) writeSync(fd, Buffer.alloc(8, 1), 0, 8, 0) // a word to read, as the proxy's file holds
const hitHeaders = { via: '1.1 caching-proxy', age: '1', 'cache-status': 'caching-proxy; hit; ttl=3599', 'x-cache': 'HIT' }

for (const [path, body] of bodies) {
  const headers = bodyHeaders(body)
  app.get(path, async (_request, reply) => {
    reply.headers(headers)
    if (fd !== undefined) {
      readSync(fd, word, 0, 8, 0)
      reply.headers(hitHeaders)
    }
    return body.bytes
  })
}

app.listen({ port: 0, host: '127.0.0.1' }).then(() => {
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('bare: no TCP address')
  process.send?.({ listening: address.port })
}, (error: unknown) => {
  console.error('bare: failed to listen', error)
  process.exit(1)
})

exitWithParent(() => {
  app.close().then(() => process.exit(0), () => process.exit(1))
  setTimeout(() => process.exit(0), 1000).unref()
})

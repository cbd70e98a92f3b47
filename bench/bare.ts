import Fastify from 'fastify'
import { makeBodies, bodyHeaders, exitWithParent } from './bodies.ts'

/** Bare Fastify returning the origin's bytes from memory: the ceiling of the Node stack. */
const bodies = makeBodies()
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })

for (const [path, body] of bodies) {
  const headers = bodyHeaders(body)
  app.get(path, async (_request, reply) => {
    reply.headers(headers)
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

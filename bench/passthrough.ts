import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'
import { exitWithParent } from './bodies.ts'

/**
 * Passthrough baseline: @fastify/reply-from (undici) in a bare Fastify, no cache, no hooks.
 * @fastify/http-proxy is a thin wrapper over this same reply-from call (plus WebSocket
 * support), so this measures the same path without adding a dependency. argv: <origin port>.
 */
const originPort = Number(process.argv[2])
if (!Number.isInteger(originPort) || originPort <= 0) {
  console.error('usage: passthrough.ts <origin port>')
  process.exit(2)
}
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
await app.register(replyFrom, { base: `http://127.0.0.1:${originPort}` })
app.all('/*', (request, reply) => { reply.from(request.url) })

app.listen({ port: 0, host: '127.0.0.1' }).then(() => {
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('passthrough: no TCP address')
  process.send?.({ listening: address.port })
}, (error: unknown) => {
  console.error('passthrough: failed to listen', error)
  process.exit(1)
})

exitWithParent(() => {
  app.close().then(() => process.exit(0), () => process.exit(1))
  setTimeout(() => process.exit(0), 1000).unref()
})

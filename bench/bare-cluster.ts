/**
 * bench/bare.ts's server under node:cluster with two workers: the ceiling for two proxy
 * workers under PM2 (which is node:cluster too, its daemon as the primary). The primary
 * reports `{ listening: port, workers: [pid, pid] }` over IPC once both workers listen.
 */
import cluster from 'node:cluster'
import { createServer } from 'node:net'
import Fastify from 'fastify'
import { makeBodies, bodyHeaders, exitWithParent } from './bodies.ts'

const WORKERS = 2

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') return reject(new Error('no port'))
      server.close(() => resolve(address.port))
    })
  })
}

if (cluster.isPrimary) {
  const port = await freePort()
  const pids: number[] = []
  for (let i = 0; i < WORKERS; i++) {
    const worker = cluster.fork({ BARE_PORT: String(port) })
    worker.once('listening', () => {
      pids.push(worker.process.pid as number)
      if (pids.length === WORKERS) process.send?.({ listening: port, workers: pids })
    })
  }
  exitWithParent(() => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    setTimeout(() => process.exit(0), 500).unref()
  })
} else {
  const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
  for (const [path, body] of makeBodies()) {
    const headers = bodyHeaders(body)
    app.get(path, async (_request, reply) => {
      reply.headers(headers)
      return body.bytes
    })
  }
  await app.listen({ port: Number(process.env.BARE_PORT), host: '127.0.0.1' })
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  process.on('disconnect', () => process.exit(0))
}

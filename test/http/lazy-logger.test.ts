import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { lazyChildLoggerFactory } from '../../src/lazy-logger.ts'

function appLoggingTo (lines: Array<Record<string, unknown>>, level: string): ReturnType<typeof Fastify> {
  const app = Fastify({
    logger: { level, stream: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) } },
    childLoggerFactory: lazyChildLoggerFactory
  })
  app.get('/info', async (request) => { request.log.info({ what: 'info' }, 'an info line'); return 'ok' })
  app.get('/warn', async (request) => { request.log.warn({ what: 'warn' }, 'a warn line'); return 'ok' })
  app.get('/boom', async () => { throw new Error('boom') })
  app.get('/bindings', async (request) => (request.log as unknown as { bindings: () => Record<string, unknown> }).bindings())
  return app
}

test('at warn: a request writing nothing logs nothing; a warning keeps the request id', { timeout: 10_000 }, async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = appLoggingTo(lines, 'warn')
  t.after(async () => { await app.close() })
  const quiet = await app.inject('/info')
  assert.equal(quiet.statusCode, 200)
  assert.equal(lines.filter((l) => l.msg === 'an info line').length, 0)
  const loud = await app.inject('/warn')
  assert.equal(loud.statusCode, 200)
  const warn = lines.find((l) => l.msg === 'a warn line')
  assert.ok(warn !== undefined, 'the warning was written')
  assert.equal(warn.what, 'warn')
  assert.match(String(warn.reqId), /^req-/)
  const failed = await app.inject('/boom')
  assert.equal(failed.statusCode, 500)
  const error = lines.find((l) => l.level === 50)
  assert.ok(error !== undefined, "Fastify's own error line is written")
  assert.match(String(error.reqId), /^req-/)
  assert.notEqual(error.reqId, warn.reqId)
  const bindings = await app.inject('/bindings')
  assert.match(String(bindings.json().reqId), /^req-/)
})

test('at info: each request line carries its own request id', { timeout: 10_000 }, async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = appLoggingTo(lines, 'info')
  t.after(async () => { await app.close() })
  await app.inject('/info')
  await app.inject('/info')
  const infos = lines.filter((l) => l.msg === 'an info line')
  assert.equal(infos.length, 2)
  assert.notEqual(infos[0].reqId, infos[1].reqId)
  assert.ok(lines.some((l) => l.msg === 'incoming request' && l.reqId === infos[0].reqId), "Fastify's request lines share the id")
})

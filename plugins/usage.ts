import type { FastifyInstance } from 'fastify'
import { NotFound } from '../src/errors.ts'

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>caching-proxy</title></head>
<body>
<h1>caching-proxy</h1>
<p>Put the address you want after the proxy's own:</p>
<ul>
<li><code>/example.com/path?query</code> fetches <code>http://example.com/path?query</code></li>
<li><code>/example.com:8080/path</code> fetches <code>http://example.com:8080/path</code></li>
<li><code>/https://example.com/path</code> fetches <code>https://example.com/path</code></li>
</ul>
<p>Responses are cached as HTTP allows; the <code>Cache-Status</code> and <code>X-Cache</code> headers say what the cache did.</p>
</body></html>
`

/** `GET /` explains how to use the proxy; `/favicon.ico` is not proxied. */
export default async function usagePlugin (fastify: FastifyInstance): Promise<void> {
  fastify.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
  fastify.get('/favicon.ico', async () => { throw new NotFound('no favicon here') })
}

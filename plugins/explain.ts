import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import createError from '@fastify/error'
import type { Config } from '../config/index.ts'
import { ADMIN_PREFIX } from './admin.ts'
import { cacheKey } from '../src/cache/cache-key.ts'
import { decodeEntry, type CacheEntry } from '../src/cache/entry.ts'
import { targetList } from '../src/cache/targeted-cache-control.ts'
import { prefersHtml } from '../src/error-page.ts'
import { explain, type ExplainInput } from '../src/admin/explain.ts'
import { explainPage } from '../src/admin/explain-page.ts'
import { RecentDecisions } from '../src/admin/recent-decisions.ts'

const BadExplain = createError<[string]>('CPX_BAD_EXPLAIN', '%s', 400)

/** URLs whose last decision this worker remembers. */
const RECENT_DECISIONS = 10_000

/**
 * GET /_proxy/explain?url=<full upstream URL> (admin-guarded): what is stored for the URL
 * (src/admin/explain.ts) and what this worker did with the last response it saw for it
 * (recorded in onResponse from the typed cache outcome). JSON, or HTML for a browser.
 */
async function explainPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const cache = fastify.cache
  const targets = targetList(config.cacheControlField)
  const decisions = new RecentDecisions(RECENT_DECISIONS)

  fastify.onProxied((request, reply, outcome) => {
    if (request.upstream === null) return
    const key = request.cacheState?.key ?? cacheKey(request.upstream)
    decisions.record(key, { time: Date.now(), method: request.method, status: reply.statusCode, outcome, storeKey: request.cacheState?.storeKey ?? key })
  })

  fastify.get(`${ADMIN_PREFIX}explain`, { config: { public: true }, onRequest: fastify.adminProtect }, async (request, reply) => {
    const raw = (request.query as Record<string, unknown>).url
    if (typeof raw !== 'string' || raw === '') throw new BadExplain('give the full upstream URL: /_proxy/explain?url=http://example.com/path')
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      throw new BadExplain(`not a URL: ${raw}`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BadExplain(`not an http(s) URL: ${raw}`)
    const key = cacheKey(url)
    const stored: ExplainInput['stored'] = []
    // The URL's own key and its variants (`<key>\nvary@...`); a longer URL shares the prefix and is skipped.
    for (const found of await cache.store.keys(key)) {
      if (found !== key && !found.startsWith(`${key}\nvary@`)) continue
      const value = await cache.store.get(found)
      if (value === undefined) continue
      let entry: CacheEntry
      try {
        entry = decodeEntry(value)
      } catch {
        continue // the cache deletes it on its next read
      }
      stored.push({ key: found, entry, bytes: value.length, inMemory: cache.memory.has(found) })
    }
    const result = explain({
      url: url.href,
      key,
      stored,
      last: decisions.get(key),
      targets,
      options: {
        heuristicMaxSeconds: config.heuristicMaxSeconds,
        staleWhileRevalidateSeconds: config.staleWhileRevalidateSeconds,
        staleIfErrorSeconds: config.staleIfErrorSeconds,
        staleOnErrorSeconds: config.staleOnErrorSeconds
      }
    })
    reply.header('cache-control', 'no-store').header('vary', 'Accept')
    if (prefersHtml(request.headers.accept)) return reply.type('text/html; charset=utf-8').send(explainPage(result))
    return reply.send(result)
  })
}

export default fp(explainPlugin, { name: 'explain', fastify: '5.x', dependencies: ['cache', 'admin', 'metrics'] })

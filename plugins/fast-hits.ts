import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config/index.ts'
import { directHeaders } from '../src/engine/direct-answer.ts'
import { FastMemo, plainRequest, targetOf } from '../src/engine/fast-hits.ts'
import type { Answer } from '../src/engine/index.ts'
import { clientCheck } from './access.ts'

/** Request targets remembered per worker (a few hundred bytes each). */
const MEMO_TARGETS = 10_000
const WORKER = process.pid

export interface FastHitsOptions {
  config: Config
  /** false: off whatever FAST_HITS says (tests compare both paths). */
  enabled?: boolean
}

/**
 * Fastify's own state, read for one flag: `closing`, set when `fastify.close()` starts, after
 * which Fastify adds `Connection: close` to every response (lib/route.js). No public API says
 * it at request time, and a hook would learn it too late (preClose hooks run on later ticks).
 */
function fastifyState (fastify: FastifyInstance): { closing: boolean } | undefined {
  const symbol = Object.getOwnPropertySymbols(fastify).find((one) => one.description === 'fastify.state')
  const state = symbol === undefined ? undefined : (fastify as unknown as Record<symbol, { closing?: unknown }>)[symbol]
  return typeof state?.closing === 'boolean' ? state as { closing: boolean } : undefined
}

/**
 * Repeated plain memory-tier hits answered before Fastify's routing (issue #13): the server's
 * 'request' listener becomes `tryFastHit(req, res) || fastify(req, res)`. A request is fast only
 * when the normal path has already answered its exact method, Host and raw target as a plain
 * memory-tier hit (plugins/cache.ts answerDirect, which teaches the memo): the URL's parsing,
 * rewriteUrl, routing and upstream rules depend on nothing else and the configuration is
 * static. Per request it checks what the skipped hooks check per request (client list, HTTP
 * version, the request fields of src/engine/fast-hits.ts, draining), asks the engine for the
 * hit (freshness, Vary, the other workers' changes) and writes the same header list as
 * answerDirect; then counts it (metrics, listeners) and logs the same line as
 * plugins/request-log.ts. With a rate limit or proxy credentials it is off: both act on
 * every request. Anything uncertain, and any error before a byte is written, goes to Fastify.
 */
async function fastHitsPlugin (fastify: FastifyInstance, opts: FastHitsOptions): Promise<void> {
  const { config } = opts
  if (opts.enabled === false || !config.fastHits || config.rateLimitPerMinute > 0 || config.proxyAuth.length > 0) return
  const cache = fastify.cache
  const engine = cache.engine
  const refusedClient = clientCheck(config)
  const memo = new FastMemo(MEMO_TARGETS)
  const logging = (fastify.log as unknown as { isLevelEnabled: (level: string) => boolean }).isLevelEnabled('info')
  const measured = fastify.hasRequestDecorator('measured')
  // Fastify's request-id generator (its counter goes on across both paths); typed in Fastify's docs, not its .d.ts.
  let genReqId = (_req: IncomingMessage): string => ''
  // Looked up once (fastify.hasDecorator walks the instance per call).
  let recordProxied: FastifyInstance['recordProxied'] | undefined

  cache.onDirectHit((request: FastifyRequest) => {
    const { upstream, cacheState } = request
    if (upstream === null || cacheState === null) return
    memo.learn(targetOf(request.method, request.headers.host, request.originalUrl), { upstream, key: cacheState.key })
  })
  engine.lookup.onForget((key) => { memo.forget(key) })

  /** Counts and logs a fast hit as the onSend/onResponse hooks count and log a direct one. */
  function record (req: IncomingMessage, upstream: URL, hit: Answer, state: ReturnType<typeof engine.start>, bytes: number, started: number): void {
    const outcome = hit.outcome
    const status = hit.status as number
    if (recordProxied !== undefined) {
      recordProxied({ method: req.method as string, upstream, cacheState: state, measured: measured ? { bytes } : null }, { statusCode: status }, outcome)
    }
    const reqId = genReqId(req)
    if (!logging) return
    fastify.log.info({
      reqId,
      method: req.method,
      url: upstream.href,
      status,
      cache: hit.headers?.['x-cache'],
      outcome: outcome.kind,
      detail: outcome.detail,
      upstreamMs: undefined,
      bytes: measured ? bytes : undefined,
      worker: WORKER,
      ms: Math.round((performance.now() - started) * 10) / 10
    }, 'request')
  }

  /** True when the request was answered here; false (nothing written) sends it to Fastify. */
  function tryFastHit (req: IncomingMessage, res: ServerResponse, closing: { closing: boolean }): boolean {
    if (closing.closing || memo.size === 0) return false
    const { method, headers, url } = req
    if (method === undefined || url === undefined || !plainRequest(method, req.httpVersion, url, headers)) return false
    const target = targetOf(method, headers.host, url)
    const learned = memo.get(target)
    // A draining worker's Connection: close (src/drain.ts) and any other header set before: Fastify merges them.
    if (learned === undefined || res.getHeaderNames().length > 0) return false
    if (refusedClient?.(req.socket.remoteAddress) !== undefined) return false
    const started = performance.now()
    const state = engine.start(learned.key)
    const hit = engine.fast({ method, headers, upstream: learned.upstream, state })
    const head = method === 'HEAD'
    const pairs = hit === undefined ? undefined : directHeaders(hit, head)
    if (hit === undefined || pairs === undefined) {
      memo.drop(target) // no longer a plain memory-tier hit: the normal path learns it again if it becomes one
      return false
    }
    res.writeHead(hit.status as number, pairs)
    const body = hit.body as Buffer
    res.end(body)
    try {
      record(req, learned.upstream, hit, state, head ? 0 : body.length, started)
    } catch (error) {
      fastify.log.warn({ err: error }, 'counting a fast hit failed')
    }
    return true
  }

  fastify.addHook('onReady', function (done) {
    const server = fastify.server
    const state = fastifyState(fastify)
    const handlers = server.listeners('request') as RequestListener[]
    if (state === undefined || handlers.length !== 1) {
      fastify.log.warn('fast hits off: Fastify\'s request listener or state is not as expected')
      return done()
    }
    const [fastifyHandler] = handlers
    recordProxied = fastify.hasDecorator('recordProxied') ? fastify.recordProxied : undefined
    genReqId = (fastify as unknown as { genReqId: (req: IncomingMessage) => string }).genReqId
    server.removeListener('request', fastifyHandler)
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      let answered = false
      try {
        answered = tryFastHit(req, res, state)
      } catch (error) {
        fastify.log.warn({ err: error }, 'fast hit failed')
        memo.drop(targetOf(req.method ?? '', req.headers.host, req.url ?? ''))
        // Written in part: nothing sensible can follow on this socket.
        if (res.headersSent) res.destroy()
        answered = res.headersSent
      }
      if (!answered) fastifyHandler.call(server, req, res)
    })
    done()
  })
}

export default fp(fastHitsPlugin, { name: 'fast-hits', fastify: '5.x', dependencies: ['cache', 'metrics'] })

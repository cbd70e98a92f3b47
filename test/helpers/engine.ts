import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import { Agent } from 'undici'
import { cacheKey } from '../../src/cache/cache-key.ts'
import { createEngine, type Answer, type Engine, type EngineRequest, type EngineSettings } from '../../src/engine/index.ts'
import { openForTest } from './store.ts'

export const SETTINGS: EngineSettings = {
  freshness: { heuristicMaxSeconds: 86_400, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, staleOnErrorSeconds: 0 },
  cacheControlField: 'caching-proxy-cache-control',
  cacheSetCookie: false,
  maxEntryBytes: 10_000,
  memoryCacheBytes: 1_000_000,
  hitForPassSeconds: 30,
  upstreamTimeoutMs: 2000
}

export interface TestEngine {
  engine: Engine
  /** Log lines the engine wrote. */
  logs: Array<{ level: string, message: string }>
}

/** An engine over a memory:// store (`memory://<name>` is shared by engines opened with that name), closed when the test ends. */
export async function engineForTest (t: TestContext, settings: Partial<EngineSettings> = {}, storeName = ''): Promise<TestEngine> {
  const store = await openForTest(t, `memory://${storeName}`)
  const upstream = new Agent({ connections: 4 })
  t.after(() => upstream.close())
  const logs: TestEngine['logs'] = []
  const log = {
    warn: (_details: object, message: string) => { logs.push({ level: 'warn', message }) },
    error: (_details: object, message: string) => { logs.push({ level: 'error', message }) }
  }
  return { engine: createEngine({ ...SETTINGS, ...settings }, { store, upstream, log }), logs }
}

/** A request for `url` as the engine sees it, with a fresh cache state. */
export function ask (engine: Engine, url: string, headers: IncomingHttpHeaders = {}, method = 'GET'): EngineRequest {
  const upstream = new URL(url)
  return { method, headers, upstream, state: engine.start(cacheKey(upstream)) }
}

/** Reads an answer's body whole (a Buffer, a stream, or none). */
export async function bodyOf (answer: Answer): Promise<string> {
  if (answer.body === undefined) return ''
  if (Buffer.isBuffer(answer.body)) return answer.body.toString()
  const chunks: Buffer[] = []
  for await (const chunk of answer.body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString()
}

/** A stream that yields `parts` and then ends, or fails with `error` after them. */
export function streamOf (parts: string[], error?: Error): Readable {
  return Readable.from((async function * () {
    for (const part of parts) {
      await new Promise((resolve) => setImmediate(resolve))
      yield Buffer.from(part)
    }
    if (error !== undefined) throw error
  })())
}

/** `promise`, or a rejection after `ms`: no wait in a test can hang it. */
export function bounded<T> (promise: Promise<T>, ms = 3000): Promise<T> {
  return Promise.race([promise, new Promise<T>((_resolve, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())])
}

import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { headersToStore, notStorableReason } from '../cache/cache-policy.ts'
import { combinePartials } from '../cache/combine-partials.ts'
import { encodeEntry, type CacheEntry, type StoredHeaders } from '../cache/entry.ts'
import { uselessAt, type FreshnessOptions } from '../cache/freshness.ts'
import { variantKey, varyNames } from '../cache/vary.ts'
import { parseContentRange } from '../http/range.ts'
import type { CacheStore } from '../store/index.ts'
import type { Lookup } from './lookup.ts'
import type { StoreCalls } from './store-calls.ts'
import type { Cached } from './types.ts'

export interface WriterSettings {
  freshness: FreshnessOptions
  cacheSetCookie: boolean
  maxEntryBytes: number
}

/** A response the origin sent, as the writer needs it (headers normalised, hop-by-hop gone). */
export interface ResponseToStore {
  /** The URL key (see Found.storeKey for the variant's). */
  key: string
  /** The URL's Vary index stamp when it has one. */
  epoch?: number
  url: string
  status: number
  headers: StoredHeaders
  /** The headers the cache decides by (policyHeaders of `headers`). */
  policy: StoredHeaders
  /** The request's headers (they select the variant). */
  requestHeaders: IncomingHttpHeaders
  requestTime: number
  responseTime: number
}

/** A storable response whose body is still arriving. */
export interface PendingWrite {
  storeKey: string
  storedHeaders: StoredHeaders
  vary: string[] | undefined
  epoch: number
  /**
   * Stores the entry with its whole body; undefined (nothing stored) when the body is missing or
   * cut short. `releaseLease`: the lease this request holds, released by the store write itself
   * when the write can carry it (Saved.leaseReleased).
   */
  commit: (whole: Buffer | undefined, releaseLease?: string) => Saved | undefined
}

export interface Saved {
  cached: Cached
  /** Resolves once the store confirmed the write (never rejects). */
  written: Promise<void>
  /** The lease handed to commit() is released by this write (also when it fails): the caller need not. */
  leaseReleased?: boolean
}

/** The one storing path: client misses, 304 refreshes and background refreshes all store through it. */
export class Writer {
  constructor (
    private readonly store: CacheStore,
    private readonly lookup: Lookup,
    private readonly calls: StoreCalls,
    private readonly settings: WriterSettings
  ) {}

  /**
   * Why a response may not be stored, or undefined when it may: RFC 9111 §3 (cache-policy.ts),
   * a declared length over MAX_ENTRY_BYTES, or a body delimited only by the connection closing
   * (it cannot be told from one cut off by a reset).
   */
  refusal (request: { method: string, headers: IncomingHttpHeaders }, status: number, headers: StoredHeaders, policy: StoredHeaders, connection: unknown): string | undefined {
    if (request.method === 'HEAD') return 'head'
    const reason = notStorableReason({ method: 'GET', headers: request.headers }, status, policy, { cacheSetCookie: this.settings.cacheSetCookie })
    if (reason !== undefined) return reason
    const declared = headers['content-length']
    if (declared !== undefined && Number(declared) > this.settings.maxEntryBytes) return 'too-large'
    if (declared === undefined && /close/i.test(String(connection ?? ''))) return 'unframed'
    return undefined
  }

  /** Starts storing a storable response: where it will go, and how to commit its body. */
  begin (response: ResponseToStore): PendingWrite {
    const vary = varyNames(response.headers.vary) as string[] | undefined
    const epoch = response.epoch ?? response.responseTime
    const storeKey = vary === undefined ? response.key : variantKey(response.key, vary, response.requestHeaders, epoch)
    const storedHeaders = headersToStore(response.headers, response.policy)
    const declared = response.headers['content-length'] === undefined ? undefined : Number(response.headers['content-length'])
    const part = response.status === 206 ? parseContentRange(response.headers['content-range']) : undefined
    // RFC 9111 §3.4: a part may combine with what the key holds; read it while the body arrives.
    const previous = part === undefined ? undefined : this.lookup.get(storeKey, true).catch(() => undefined)
    const commit = (whole: Buffer | undefined, releaseLease?: string): Saved | undefined => {
      if (whole === undefined || (declared !== undefined && whole.length !== declared)) return undefined
      // RFC 9111 §3.3: a stored part holds exactly the bytes its Content-Range names.
      if (part !== undefined && whole.length !== part.end - part.start + 1) return undefined
      const { url, status, requestTime, responseTime } = response
      const entry: CacheEntry = { url, status, headers: storedHeaders, requestTime, responseTime, vary, body: whole }
      if (previous === undefined) return this.save(response.key, storeKey, entry, epoch, releaseLease)
      return this.saveCombined(response.key, storeKey, entry, epoch, previous)
    }
    return { storeKey, storedHeaders, vary, epoch, commit }
  }

  /** Stores a response (and the Vary index of its URL when it varies); see PendingWrite.commit for `releaseLease`. */
  save (key: string, storeKey: string, entry: CacheEntry, epoch = entry.responseTime, releaseLease?: string): Saved {
    const cached = this.lookup.prepare(entry)
    const writes: Array<Promise<void>> = []
    if (entry.vary !== undefined && storeKey !== key) {
      const index: CacheEntry = { url: entry.url, status: 0, headers: {}, requestTime: epoch, responseTime: epoch, vary: entry.vary, body: Buffer.alloc(0) }
      const encodedIndex = encodeEntry(index)
      writes.push(this.put(key, this.lookup.prepare(index), encodedIndex, undefined))
    }
    const encoded = encodeEntry({ ...entry, vary: undefined })
    writes.push(this.put(storeKey, cached, encoded, uselessAt(cached.fresh, entry.headers, this.settings.freshness), releaseLease))
    return { cached, written: Promise.all(writes).then(() => {}), leaseReleased: releaseLease !== undefined }
  }

  /**
   * Stores a part combined with the stored response it extends when RFC 9111 §3.4 allows
   * (combine-partials.ts), else the part alone. `cached` is the part as received (the flight's
   * waiters never take a part: they ask alone); `written` resolves once what was chosen is stored.
   */
  private saveCombined (key: string, storeKey: string, entry: CacheEntry, epoch: number, previous: Promise<Cached | undefined>): Saved {
    const written = this.calls.track(previous.then(async (stored) => {
      const combined = stored === undefined || stored.entry.vary !== undefined ? undefined : combinePartials(stored.entry, entry)
      await this.save(key, storeKey, combined === undefined ? entry : { ...entry, ...combined }, epoch).written
    }), 'set')
    return { cached: this.lookup.prepare(entry), written }
  }

  private put (key: string, cached: Cached, encoded: Buffer, expiresAt: number | undefined, releaseLease?: string): Promise<void> {
    this.lookup.remember(key, cached, encoded.length)
    const set = this.store.set(key, encoded, { expiresAt, releaseLease })
    // A write that failed released nothing: the lease goes back on its own (and the error is tracked).
    const stored = releaseLease === undefined
      ? set
      : set.catch(async (error: unknown) => {
        await this.store.releaseLease(releaseLease).catch(() => {})
        throw error
      })
    return this.calls.track(stored, 'set')
  }

  /** Deletes an entry; resolves once every process will miss it (never rejects). */
  invalidate (key: string): Promise<void> {
    this.lookup.forget(key)
    return this.calls.track(this.store.delete(key), 'delete')
  }
}

/** Reads a body whole, or 'too-large' (the body destroyed) once it passes `maxBytes`; rejects on a stream error. */
export async function readWhole (body: Readable, maxBytes: number): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > maxBytes) return 'too-large' // leaving the loop destroys the body
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks, size)
}

import { requestHead, send, type RawResponse } from './raw-http.ts'

export interface BurstOptions {
  method?: string
  /** Extra request header lines for the i-th request of the run. */
  headers?: (i: number) => Array<[string, string]>
  /** Identical requests sent at once (each on a new connection). */
  size?: number
  /** Keep sending bursts until this long has passed (a burst that started always finishes). */
  minMs?: number
  /** Hard cap on the number of bursts. */
  maxBursts?: number
  /** Client-side limit on each request: a request not answered by then is a hang. */
  timeoutMs?: number
}

export interface BurstRun {
  responses: RawResponse[]
  /** Milliseconds each burst took, from the first request sent to the last answer. */
  durations: number[]
  /** Requests sent in the first burst. */
  firstBurst: number
  elapsedMs: number
}

/**
 * Bursts of `size` identical concurrent requests for `target` on fresh connections (so a
 * cluster primary spreads them over its workers), repeated for at least `minMs`; every
 * request is bounded by `timeoutMs`, and the whole run by `maxBursts`.
 */
export async function bursts (port: number, target: string, options: BurstOptions = {}): Promise<BurstRun> {
  const size = options.size ?? 50
  const minMs = options.minMs ?? 2000
  const maxBursts = options.maxBursts ?? 150
  const timeoutMs = options.timeoutMs ?? 8000
  const method = options.method ?? 'GET'
  const responses: RawResponse[] = []
  const durations: number[] = []
  const started = Date.now()
  let sent = 0
  for (let burst = 0; burst < maxBursts && (burst === 0 || Date.now() - started < minMs); burst++) {
    const burstStart = Date.now()
    const batch = await Promise.all(Array.from({ length: size }, async () => {
      const i = sent++
      const head = requestHead(method, target, [['Connection', 'close'], ...(options.headers?.(i) ?? [])])
      return await send(port, head, { timeoutMs, head: method === 'HEAD' })
    }))
    durations.push(Date.now() - burstStart)
    responses.push(...batch)
  }
  return { responses, durations, firstBurst: size, elapsedMs: Date.now() - started }
}

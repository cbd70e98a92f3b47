/**
 * What LOG_LEVEL=info costs a cache hit: the same app at `info` (one JSON line per request,
 * written synchronously to /dev/null as pino writes to stdout) and at `warn`, hits of 1 KiB
 * from the memory tier through inject(), CPU time per hit, rounds alternated, medians.
 * inject() costs the same at both levels, so the difference is the log line.
 */
import { closeSync, openSync, writeSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../config/index.ts'

export interface LogCost { rounds: number, hits: number, infoUs: number, warnUs: number, differenceUs: number, lineBytes: number }

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

export async function measureLogCost (hitsPerRound = 3000, rounds = 9): Promise<LogCost> {
  const body = Buffer.alloc(1024, 'x')
  const origin = http.createServer((_req, res) => { res.setHeader('cache-control', 'public, max-age=3600'); res.end(body) })
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  const host = `127.0.0.1:${(origin.address() as AddressInfo).port}`
  const devNull = openSync('/dev/null', 'w')
  let lineBytes = 0
  const sink = { write (line: string) { lineBytes = line.length; writeSync(devNull, line) } }
  const env = { CACHE_STORE: 'memory://', ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', MAX_EVENT_LOOP_DELAY_MS: '0' }
  const apps = {
    info: await buildApp(loadConfig({ ...env, LOG_LEVEL: 'info' }), { logStream: sink }),
    warn: await buildApp(loadConfig({ ...env, LOG_LEVEL: 'warn' }), { logStream: sink })
  }
  try {
    const perHit: Record<'info' | 'warn', number[]> = { info: [], warn: [] }
    for (const app of Object.values(apps)) for (let i = 0; i < 500; i++) await app.inject({ url: `/${host}/hit` }) // warm-up, stored
    for (let round = 0; round < rounds; round++) {
      for (const level of ['info', 'warn'] as const) {
        const start = process.cpuUsage()
        for (let i = 0; i < hitsPerRound; i++) await apps[level].inject({ url: `/${host}/hit` })
        const used = process.cpuUsage(start)
        perHit[level].push((used.user + used.system) / hitsPerRound)
      }
    }
    // The median of each round's own difference: rounds run back to back, so a busy moment hits both levels.
    const differenceUs = median(perHit.info.map((info, i) => info - perHit.warn[i]))
    return { rounds, hits: hitsPerRound * rounds, infoUs: median(perHit.info), warnUs: median(perHit.warn), differenceUs, lineBytes }
  } finally {
    await apps.info.close()
    await apps.warn.close()
    closeSync(devNull)
    origin.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cost = await measureLogCost()
  console.log(`LOG_LEVEL=info costs ${cost.differenceUs.toFixed(1)} µs CPU per hit (info ${cost.infoUs.toFixed(1)} µs, warn ${cost.warnUs.toFixed(1)} µs through inject(), ${cost.hits} hits each; a line is ${cost.lineBytes} bytes)`)
}

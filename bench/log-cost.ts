/**
 * What LOG_LEVEL=info costs a cache hit: the same app at `info` (one JSON line per request,
 * written to /dev/null the way the proxy writes stdout: src/log-sink.ts) and at `warn`, 1 KiB hits from
 * the memory tier over real sockets (32 keep-alive connections), loaded in alternating batches
 * in this one process (bench/inprocess-ab.ts); this process's CPU time per hit. The client's
 * share is the same at both levels, so the difference of each pair of batches is the log line;
 * pairing batches a few hundred milliseconds apart keeps other work on the machine out of it.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'
import { buildApp } from '../src/app.ts'
import { destinationSink } from '../src/log-sink.ts'
import { loadConfig } from '../config/index.ts'
import { interleaved } from './inprocess-ab.ts'
import { median } from './stats.ts'

export interface LogCost { rounds: number, hits: number, infoUs: number, warnUs: number, differenceUs: number, lineBytes: number }

export async function measureLogCost (hitsPerRound = 1000, rounds = 100): Promise<LogCost> {
  const body = Buffer.alloc(1024, 'x')
  const origin = http.createServer((_req, res) => { res.setHeader('cache-control', 'public, max-age=3600'); res.end(body) })
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  const host = `127.0.0.1:${(origin.address() as AddressInfo).port}`
  // Lines batched per loop turn into pino's destination, as stdout outside PM2 (src/log-sink.ts), on /dev/null.
  const devNull = destinationSink('/dev/null')
  let lineBytes = 0
  const sink = { write (line: string) { lineBytes = line.length; devNull.write(line) } }
  const env = { CACHE_STORE: 'memory://', ALLOW_PRIVATE_UPSTREAMS: 'true', UPSTREAM_PORTS: '*', MAX_EVENT_LOOP_DELAY_MS: '0' }
  const apps = {
    info: await buildApp(loadConfig({ ...env, LOG_LEVEL: 'info' }), { logStream: sink }),
    warn: await buildApp(loadConfig({ ...env, LOG_LEVEL: 'warn' }), { logStream: sink })
  }
  const pools: Pool[] = []
  try {
    const targets = []
    for (const [name, app] of Object.entries(apps)) {
      await app.listen({ port: 0, host: '127.0.0.1' })
      const pool = new Pool(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, { connections: 32 })
      pools.push(pool)
      targets.push({ name, pool, url: `/${host}/hit` })
    }
    const perHit = await interleaved(targets, rounds, hitsPerRound)
    const info = perHit.get('info') as number[]
    const warn = perHit.get('warn') as number[]
    const differenceUs = median(info.map((us, i) => us - warn[i]))
    return { rounds, hits: hitsPerRound * rounds, infoUs: median(info), warnUs: median(warn), differenceUs, lineBytes }
  } finally {
    for (const pool of pools) await pool.close()
    await apps.info.close()
    await apps.warn.close()
    origin.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cost = await measureLogCost()
  console.log(`LOG_LEVEL=info costs ${cost.differenceUs.toFixed(1)} µs CPU per hit (info ${cost.infoUs.toFixed(1)} µs, warn ${cost.warnUs.toFixed(1)} µs ` +
    `per hit with the client's share, real sockets, ${cost.rounds} paired batches of ${cost.hits / cost.rounds}; a line is ${cost.lineBytes} bytes)`)
}

import { createRequire } from 'node:module'

/**
 * One autocannon run in its own process (forked by run.ts with an IPC channel), so the load
 * generator never shares an event loop with a server or with the orchestrator.
 * argv: <url> <connections> <seconds>. Sends { type: 'start' } just before the load begins and
 * { type: 'result', result, cpuSeconds, wallSeconds } when it ends.
 */
interface AutocannonResult {
  requests: { average: number, total: number }
  latency: { p50: number, p99: number }
  throughput: { average: number }
  errors: number
  timeouts: number
  non2xx: number
}

type Autocannon = (
  options: { url: string, connections: number, duration: number },
  callback: (error: Error | null, result: AutocannonResult) => void
) => unknown

export interface LoadMessage {
  type: 'start' | 'result'
  result?: AutocannonResult
  cpuSeconds?: number
  wallSeconds?: number
}

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon
const [url, connections, seconds] = process.argv.slice(2)
if (url === undefined || process.send === undefined) {
  console.error('usage: forked by bench/run.ts with <url> <connections> <seconds>')
  process.exit(2)
}

process.on('disconnect', () => process.exit(1))
process.send({ type: 'start' } satisfies LoadMessage)
const cpuBefore = process.cpuUsage()
const wallBefore = performance.now()
autocannon({ url, connections: Number(connections), duration: Number(seconds) }, (error, result) => {
  if (error !== null) {
    console.error('autocannon failed:', error)
    process.exit(1)
  }
  const cpu = process.cpuUsage(cpuBefore)
  const message: LoadMessage = {
    type: 'result',
    result,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    wallSeconds: (performance.now() - wallBefore) / 1000
  }
  process.send?.(message, () => process.exit(0))
})

/** One HTTP GET with its timing, for warm-ups and probes (not for load: that is autocannon's job). */
import http from 'node:http'

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

export interface Got {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  ms: number
}

const probeAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity })

export async function get (url: string, timeoutMs = 10_000, agent: http.Agent = probeAgent): Promise<Got> {
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: Buffer.concat(chunks),
        ms: performance.now() - started
      }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${url}`)))
    req.on('error', reject)
  })
}

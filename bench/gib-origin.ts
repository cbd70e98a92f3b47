/** The origin of bench/big-body.ts: GET /gib sends 1 GiB made of one 64 KiB chunk, honouring backpressure. */
import { createServer } from 'node:http'

const GIB = 2 ** 30
const CHUNK = 64 * 1024

function serveOrigin (): void {
  const chunk = Buffer.alloc(CHUNK, 'abcdefghijklmnopqrstuvwxyz0123456789\n')
  const server = createServer((req, res) => {
    if (req.url !== '/gib') { res.writeHead(404, { 'content-length': '0' }); res.end(); return }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(GIB), 'cache-control': 'public, max-age=60' })
    if (req.method === 'HEAD') { res.end(); return }
    let sent = 0
    const pump = (): void => {
      while (sent < GIB) {
        sent += CHUNK
        if (!res.write(chunk)) { res.once('drain', pump); return }
      }
      res.end()
    }
    res.on('close', () => { sent = GIB })
    pump()
  })
  server.listen(0, '127.0.0.1', () => {
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no TCP address')
    process.send?.({ listening: address.port })
  })
  process.on('disconnect', () => process.exit(0))
}

serveOrigin()

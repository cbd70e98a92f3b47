import { deflateSync } from 'node:zlib'
import type { IncomingMessage, ServerResponse } from 'node:http'

// zlib.crc32 needs Node 20.15; the package supports 20.11.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})

function crc32 (data: Buffer): number {
  let c = 0xffffffff
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** A solid-colour RGB PNG of width × height (built here: no image files in the repo). */
export function solidPng (width: number, height: number, rgb: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const out = Buffer.alloc(body.length + 8)
    out.writeUInt32BE(data.length, 0)
    body.copy(out, 4)
    out.writeUInt32BE(crc32(body), body.length + 4)
    return out
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bit depth
  header[9] = 2 // colour type: RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3).map((_, i) => rgb[i % 3])])
  const pixels = Buffer.concat(Array.from({ length: height }, () => row))
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(pixels)),
    chunk('IEND', Buffer.alloc(0))
  ])
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

function send (type: string, body: string | Buffer, cacheControl = 'public, max-age=600'): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': type, 'cache-control': cacheControl, 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }
}

/**
 * A small site whose page needs every kind of subresource: a stylesheet, an image, a
 * script, and JSON the script fetches from a root-relative URL. All cacheable.
 * `label` is shown in the page so screenshots say which site they are.
 */
export function testSiteRoutes (label: string): Record<string, Handler> {
  return {
    '/': send('text/html; charset=utf-8', `<!doctype html>
<html><head><meta charset="utf-8"><title>${label}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/style.css"></head>
<body><h1 id="title">${label}</h1>
<p><img id="logo" src="/logo.png" alt="logo" width="120" height="60"></p>
<p id="data">waiting for data.json</p>
<script src="/app.js"></script>
</body></html>`),
    '/style.css': send('text/css', 'body { background: rgb(240, 248, 255); font-family: sans-serif }\n#title { color: rgb(200, 10, 20) }\n'),
    '/logo.png': send('image/png', solidPng(120, 60, [30, 144, 255])),
    '/app.js': send('text/javascript', "fetch('/data.json').then((r) => r.json()).then((d) => { document.getElementById('data').textContent = d.message })\n"),
    '/data.json': send('application/json', JSON.stringify({ message: `data for ${label} arrived` }))
  }
}

/**
 * Test web sites for browser tests. testSiteRoutes(): one small page with each kind of
 * subresource (forward-mode tests). startTestSite(): a multi-origin site: site A on 127.0.0.1 and site B on
 * 127.0.0.2 (both loopback on Linux), each a real HTTP server on port 0 that counts the
 * requests it receives. Site A's home page uses everything a page fetches: a style sheet
 * (gzip) with url() images and a web font, a script that fetches root-relative JSON, srcset,
 * an image from site B, links, absolute and relative redirects, a GET form and cookies.
 * Every response is deterministic so screenshots can be compared.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { PNG } from 'pngjs'

export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void

export interface SiteOrigin {
  /** host:port */
  host: string
  /** http://host:port */
  origin: string
  requests: Array<{ method: string, path: string, headers: IncomingHttpHeaders }>
  /** Requests received for `path` (query included). */
  hits: (path: string) => number
  close: () => Promise<void>
}

/** A PNG of `width`×`height` in stripes of two colours (deterministic). */
export function stripes (width: number, height: number, a: [number, number, number], b: [number, number, number]): Buffer {
  const png = new PNG({ width, height })
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, bl] = Math.floor((x + y) / 8) % 2 === 0 ? a : b
      const i = (y * width + x) * 4
      png.data[i] = r
      png.data[i + 1] = g
      png.data[i + 2] = bl
      png.data[i + 3] = 255
    }
  }
  return PNG.sync.write(png)
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** A solid-colour PNG of width × height. */
export function solidPng (width: number, height: number, rgb: [number, number, number]): Buffer {
  return stripes(width, height, rgb, rgb)
}

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

/** A TrueType font from the system (serif, so it shows when it loads), or undefined when none is installed. */
function systemFont (): Buffer | undefined {
  const dir = '/usr/share/fonts/truetype/dejavu'
  for (const name of ['DejaVuSerif-Bold.ttf', 'DejaVuSerif.ttf', 'DejaVuSansMono.ttf']) {
    if (existsSync(join(dir, name))) return readFileSync(join(dir, name))
  }
  if (existsSync(dir)) {
    const any = readdirSync(dir).find((f) => f.endsWith('.ttf'))
    if (any !== undefined) return readFileSync(join(dir, any))
  }
  return undefined
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function respond (res: ServerResponse, type: string, body: string | Buffer, extra: Record<string, string | string[]> = {}, gzip = false): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body
  const payload = gzip ? gzipSync(bytes) : bytes
  res.writeHead(200, { 'content-type': type, 'cache-control': 'max-age=300', 'content-length': payload.length, ...(gzip ? { 'content-encoding': 'gzip', vary: 'Accept-Encoding' } : {}), ...extra })
  res.end(payload)
}

function page (title: string, body: string, head = ''): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>${head}</head><body>${body}</body></html>`
}

async function listen (address: string, routes: Record<string, Route>): Promise<SiteOrigin> {
  const requests: SiteOrigin['requests'] = []
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers })
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? address}`)
    const route = routes[url.pathname]
    req.resume()
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('not found')
      return
    }
    route(req, res, url)
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve) => server.listen(0, address, resolve))
  const host = `${address}:${(server.address() as AddressInfo).port}`
  return {
    host,
    origin: `http://${host}`,
    requests,
    hits: (path) => requests.filter((r) => r.path === path).length,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** Cookie pages, the same on both sites: one sets a server and a script cookie, one shows what the site sees. */
function cookieRoutes (name: string): Record<string, Route> {
  return {
    '/set-cookie': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'set-cookie': [`sid=${name}-secret; Path=/`, `pref=${name}; Path=/; Domain=127.0.0.1; SameSite=Lax`] })
      res.end(page(`${name} sets cookies`, `<p id="done">set</p><script>document.cookie = "js${name}=1; path=/"</script>`))
    },
    '/read-cookie': (req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      res.end(page(`${name} reads cookies`, `<p id="server">${escapeHtml(req.headers.cookie ?? '')}</p><p id="script"></p>` +
        '<script>document.getElementById("script").textContent = document.cookie</script>'))
    }
  }
}

export interface TestSite {
  a: SiteOrigin
  b: SiteOrigin
  /** Whether site A serves a real web font (a system TTF); otherwise its font request answers a tiny invalid font. */
  realFont: boolean
  close: () => Promise<void>
}

/**
 * Starts site A (127.0.0.1) and site B (127.0.0.2). `extra` adds routes to site A (the lead's
 * audio test adds its media file here).
 */
export async function startTestSite (extra: Record<string, Route> = {}): Promise<TestSite> {
  const font = systemFont()
  const b = await listen('127.0.0.2', {
    '/': (_req, res) => respond(res, 'text/html; charset=utf-8', page('Site B', '<h1>Site B</h1><a id="read" href="/read-cookie">read</a>')),
    '/img/badge.png': (_req, res) => respond(res, 'image/png', stripes(60, 30, [200, 40, 40], [250, 220, 60])),
    ...cookieRoutes('B')
  })
  const a = await listen('127.0.0.1', {
    '/': (_req, res) => respond(res, 'text/html; charset=utf-8', page('Site A', [
      '<h1 class="title">Site A through the cache</h1>',
      '<p class="lead">Plain text in the web font.</p>',
      '<img id="logo" src="/img/logo.png" srcset="/img/logo.png 1x, /img/logo@2x.png 2x" width="80" height="40" alt="logo">',
      `<img id="badge" src="${b.origin}/img/badge.png" width="60" height="30" alt="badge">`,
      '<div class="tile"></div>',
      '<p id="data">loading</p>',
      '<ul><li><a id="about" href="about.html">About</a></li>',
      `<li><a id="abs-redirect" href="${'/redirect-abs'}">absolute redirect</a></li>`,
      '<li><a id="rel-redirect" href="/redirect-rel">relative redirect</a></li>',
      `<li><a id="site-b" href="${b.origin}/">site B</a></li></ul>`,
      '<form id="search" action="/search" method="get"><input name="q" value="cache"><button id="go">Search</button></form>',
      '<script src="/js/app.js"></script>'
    ].join('\n'), '<link rel="stylesheet" href="/css/site.css">'), {}, true),
    '/css/site.css': (_req, res) => respond(res, 'text/css', [
      "@font-face { font-family: 'TestFont'; src: url('../fonts/test.ttf') format('truetype'); }",
      'body { margin: 16px; font-family: TestFont, sans-serif; background: #fff url(/img/bg.png) repeat-x; }',
      '.title { color: #234; font-size: 28px; }',
      '.tile { width: 120px; height: 24px; background-image: url("/img/tile.png"); }'
    ].join('\n'), {}, true),
    '/fonts/test.ttf': (_req, res) => respond(res, 'font/ttf', font ?? Buffer.from('not a font')),
    '/img/bg.png': (_req, res) => respond(res, 'image/png', stripes(16, 8, [235, 240, 250], [220, 230, 245])),
    '/img/tile.png': (_req, res) => respond(res, 'image/png', stripes(24, 24, [20, 120, 60], [240, 240, 240])),
    '/img/logo.png': (_req, res) => respond(res, 'image/png', stripes(80, 40, [30, 60, 200], [250, 250, 250])),
    '/img/logo@2x.png': (_req, res) => respond(res, 'image/png', stripes(160, 80, [30, 60, 200], [250, 250, 250])),
    '/js/app.js': (_req, res) => respond(res, 'text/javascript', 'fetch("/api/data.json").then(function (r) { return r.json() }).then(function (d) { document.getElementById("data").textContent = d.message })'),
    '/api/data.json': (_req, res) => respond(res, 'application/json', JSON.stringify({ message: 'data fetched from /api/data.json' })),
    '/about.html': (_req, res, url) => respond(res, 'text/html; charset=utf-8', page('About A', `<h1 id="where">About A${escapeHtml(url.search)}</h1><a id="home" href="/">home</a>`), { 'cache-control': 'no-cache' }),
    '/redirect-abs': (_req, res) => { res.writeHead(302, { location: `${a.origin}/about.html?from=abs` }); res.end() },
    '/redirect-rel': (_req, res) => { res.writeHead(302, { location: '/about.html?from=rel' }); res.end() },
    '/search': (_req, res, url) => respond(res, 'text/html; charset=utf-8', page('Search', `<h1 id="results">Results for ${escapeHtml(url.searchParams.get('q') ?? '')}</h1>`), { 'cache-control': 'no-store' }),
    ...cookieRoutes('A'),
    ...extra
  })
  return {
    a,
    b,
    realFont: font !== undefined,
    close: async () => { await Promise.all([a.close(), b.close()]) }
  }
}

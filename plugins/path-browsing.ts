import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import type { Config } from '../config/index.ts'
import { isBrowser, pathRedirect, upstreamBrowserHeaders } from '../src/browsing/path-browsing.ts'
import { proxyPrefix, toProxyPath, upstreamOf, type UrlMap } from '../src/browsing/proxy-path.ts'
import { siteOfHost, siteOriginMap } from '../src/browsing/site-origin.ts'
import { rewriteLink, rewriteRefresh, rewriteUrlField } from '../src/browsing/header-rewrite.ts'
import { charsetOf, rewritableKind, rewriteBody } from '../src/browsing/rewrite-body.ts'
import { HIDING_POLICIES } from '../src/browsing/html-rewrite.ts'
import { cookieShim, rewriteSetCookie } from '../src/browsing/site-cookies.ts'
import { PROXY_ROUTE } from './upstream.ts'

// Headers that describe the origin's exact bytes or name the origin's hosts: wrong for a rewritten body.
const BYTE_HEADERS = ['content-length', 'content-encoding', 'content-md5', 'digest', 'content-digest', 'repr-digest']
const OWN_ROUTES = new Set(['/', '/favicon.ico'])
const DOCUMENT_DESTINATIONS = new Set(['document', 'iframe', 'frame', 'embed', 'object'])
const POLICY_HEADERS = ['content-security-policy', 'content-security-policy-report-only']

/** The port of a Host header ('' for none). */
function portOf (host: string | undefined): string {
  const match = /:(\d+)$/.exec(host ?? '')
  return match === null ? '' : match[1]
}

/** A request for a document (a page or frame), not a fragment fetched by a script. */
function isDocument (request: FastifyRequest): boolean {
  const dest = request.headers['sec-fetch-dest']
  return dest === undefined || DOCUMENT_DESTINATIONS.has(String(dest))
}

/** A request in path-prefix form (`GET /host/path`), not a forward-proxy one (`GET http://host/path`). */
function pathMode (request: FastifyRequest, route = request.routeOptions.url): boolean {
  return route === PROXY_ROUTE && request.originalUrl.startsWith('/')
}

/** Moves the URL-valued response headers and the cookies into the proxy's terms. */
function rewriteHeaders (reply: FastifyReply, upstream: URL, map: UrlMap | undefined): void {
  const resolve = (reference: string): string | undefined => toProxyPath(reference, upstream, map)
  for (const name of ['location', 'content-location']) {
    const value = reply.getHeader(name)
    if (typeof value === 'string') reply.header(name, rewriteUrlField(value, resolve))
  }
  const refresh = reply.getHeader('refresh')
  if (typeof refresh === 'string') reply.header('refresh', rewriteRefresh(refresh, resolve))
  const link = reply.getHeader('link')
  if (link !== undefined) reply.header('link', [link].flat().map((value) => rewriteLink(String(value), resolve)))
  const cookies = reply.getHeader('set-cookie')
  if (cookies !== undefined) {
    reply.removeHeader('set-cookie')
    const prefix = map === undefined ? proxyPrefix(upstream) : undefined
    reply.header('set-cookie', [cookies].flat().map((value) => rewriteSetCookie(String(value), prefix, upstream.pathname)))
  }
}

/**
 * Path-prefix browsing (README "Path-prefix mode"). For browsers only (src/browsing/path-browsing.ts
 * isBrowser): redirects root-relative requests that slipped through to the site of their
 * Referer, adds the trailing slash to a bare site, keeps each site's cookies to itself, and
 * rewrites HTML, CSS and URL-valued headers on the way out. Runs in onSend, so hits and misses
 * alike are rewritten while the cache keeps the origin's bytes. Other clients get the origin's
 * response untouched.
 */
async function pathBrowsingPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts

  // Before the upstream plugin judges the path: `/css/site.css` is not a host to refuse.
  fastify.addHook('onRequest', (request, reply, done) => {
    // curl: nothing to decide. Asked first: two header reads, where the route checks below build
    // `request.routeOptions` (a getter that makes a new object on every read).
    const browser = isBrowser(request.headers)
    if (!browser && request.headers.referer === undefined) return done()
    // The proxy's own `/` and `/favicon.ico` too: a proxied page asking for them means its site's.
    const route = request.routeOptions.url
    if (!pathMode(request, route) && !(OWN_ROUTES.has(route ?? '') && request.headers.referer !== undefined)) return done()
    const ownOrigin = siteOfHost(request.headers.host) !== undefined
    const redirect = ownOrigin ? undefined : pathRedirect(request.method, request.url, request.headers, browser)
    if (redirect !== undefined) {
      reply.code(redirect.status).header('location', redirect.location).header('cache-control', 'no-store').send()
      return
    }
    if (browser) {
      const upstream = upstreamOf(request.url)
      if (upstream !== undefined) upstreamBrowserHeaders(request.headers, upstream, ownOrigin)
    }
    done()
  })

  fastify.addHook('onSend', (request, reply, payload, done) => {
    const upstream = request.upstream
    // A string payload is the proxy's own answer (an error page), not the origin's body.
    if (upstream === null || typeof payload === 'string' || !isBrowser(request.headers) || !pathMode(request)) return done(null, payload)
    // A site under its own origin (src/browsing/site-origin.ts) links to other sites by their origins.
    const host = request.headers.host
    const map = siteOfHost(host) === undefined ? undefined : siteOriginMap(upstream, portOf(host))
    rewriteHeaders(reply, upstream, map)
    const status = reply.statusCode
    const etag = reply.getHeader('etag')
    if (status === 304 && typeof etag === 'string' && !etag.startsWith('W/') && String(request.headers['if-none-match'] ?? '').includes(`W/${etag}`)) {
      // The browser holds the rewritten body under the weak tag: a 304 must not make it strong again (RFC 9111 §4.3.4).
      reply.header('etag', `W/${etag}`)
    }
    const contentType = reply.getHeader('content-type') as string | undefined
    const kind = rewritableKind(contentType)
    // RFC 9110 §15.3.7, §15.4.5: a 206 or 304 stands for parts or metadata of the origin's bytes; never rewritten.
    // A download (Content-Disposition: attachment) is a file to save, not a page to browse.
    if (kind === undefined || payload === null || payload === undefined || request.method === 'HEAD' ||
        status < 200 || status === 204 || status === 206 || status === 304 ||
        /^\s*attachment/i.test(String(reply.getHeader('content-disposition') ?? ''))) return done(null, payload)
    const body = rewriteBody(payload as Readable | Buffer, {
      kind,
      url: upstream,
      contentEncoding: reply.getHeader('content-encoding') as string | undefined,
      charset: charsetOf(contentType),
      head: kind === 'html' && map === undefined && isDocument(request) ? cookieShim(proxyPrefix(upstream)) : undefined,
      maxCssChars: config.maxEntryBytes,
      map,
      keepReferrerPolicy: map !== undefined
    })
    if (body === undefined) return done(null, payload) // an unknown Content-Encoding: sent as the origin sent it
    for (const name of BYTE_HEADERS) reply.removeHeader(name)
    if (kind === 'html') {
      for (const name of POLICY_HEADERS) reply.removeHeader(name)
      const referrerPolicy = reply.getHeader('referrer-policy')
      // Routed by Host, a site under its own origin does not need the Referer.
      if (map === undefined && typeof referrerPolicy === 'string' && referrerPolicy.split(',').some((p) => HIDING_POLICIES.has(p.trim().toLowerCase()))) {
        reply.header('referrer-policy', 'same-origin')
      }
    }
    // RFC 9110 §8.8.1: the rewritten body is only weakly equivalent to the origin's.
    if (typeof etag === 'string' && !etag.startsWith('W/')) reply.header('etag', `W/${etag}`)
    reply.header('content-type', `${String(contentType).split(';')[0].trim()}; charset=utf-8`)
    done(null, body)
  })
}

export default fp(pathBrowsingPlugin, { name: 'path-browsing', fastify: '5.x' })

/**
 * Decisions of path-prefix browsing that depend on the request only: is the client a
 * browser, must it be redirected (a root-relative request that slipped past the rewriter, a
 * site opened without its trailing slash), and which request headers go upstream.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { getDomain } from 'tldts'
import { firstSegment, isPlausibleHost } from './plausible-host.ts'
import { proxyPrefix, upstreamOf } from './proxy-path.ts'
import { filterCookieHeader } from './site-cookies.ts'
import { siteOfHost } from './site-origin.ts'

/**
 * A browser is a client that sends `Sec-Fetch-Dest` (every current Chromium, Firefox and
 * Safari, on localhost and HTTPS) or a `Mozilla/` User-Agent (what browsers send to
 * non-secure hosts, where Fetch Metadata is left out). curl, wget and python send neither;
 * fetch() in Node (undici) sends `Sec-Fetch-Mode: cors` alone, with User-Agent `node`, so
 * `Sec-Fetch-Mode` by itself does not make a browser (the cache-tests suite's client is one).
 */
export function isBrowser (headers: IncomingHttpHeaders): boolean {
  if (headers['sec-fetch-dest'] !== undefined) return true
  const agent = headers['user-agent']
  return typeof agent === 'string' && /^Mozilla\/\d/.test(agent)
}

/** A Host header as URL.host spells it (lower case, no default port). */
function hostOf (host: string): string | undefined {
  try {
    return new URL(`http://${host}`).host
  } catch {
    return undefined
  }
}

/**
 * The upstream page a `Referer` (or an `Origin`) names when it is a page of this proxy
 * (`host`): a proxied path, or a page under a per-site origin (src/browsing/site-origin.ts).
 */
export function refererUpstream (referer: string | undefined, host: string | undefined): URL | undefined {
  if (referer === undefined || host === undefined) return undefined
  let url: URL
  try {
    url = new URL(referer)
  } catch {
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  const path = url.pathname + url.search
  const site = siteOfHost(url.host)
  if (site !== undefined) return upstreamOf(site + path)
  if (url.host !== hostOf(host)) return undefined
  if (!isPlausibleHost(firstSegment(path))) return undefined
  return upstreamOf(path)
}

export interface Redirect {
  status: 307 | 308
  location: string
}

/**
 * The redirect a path-prefix request needs, if any:
 * - first segment not a plausible host (or none: `/`, `/?q`) and a Referer that is a proxied
 *   page: 307 (method and body kept, RFC 9110 §15.4.8) to the same path under the Referer's site;
 * - a browser opening a site without a path (`/127.0.0.1:23000`): 308 to `/127.0.0.1:23000/`,
 *   so the page's relative links resolve under the site.
 */
export function pathRedirect (method: string, url: string, headers: IncomingHttpHeaders, browser: boolean): Redirect | undefined {
  const segment = firstSegment(url)
  if (segment !== '' && isPlausibleHost(segment)) {
    const rest = url.replace(/^\/+/, '').slice(segment.length)
    if (browser && (method === 'GET' || method === 'HEAD') && (rest === '' || rest.startsWith('?'))) {
      return { status: 308, location: `/${segment}/${rest}` }
    }
    return undefined
  }
  const from = refererUpstream(headers.referer, headers.host)
  if (from === undefined) return undefined
  return { status: 307, location: proxyPrefix(from) + (url.startsWith('/') ? url : `/${url}`) }
}

const REWRITABLE_CODINGS = new Set(['gzip', 'x-gzip', 'deflate', 'br', 'identity', '*'])

/** Fetch Metadata's site relation (W3C Fetch Metadata §2.1) of two upstream origins. */
export function siteRelation (from: URL, to: URL): 'same-origin' | 'same-site' | 'cross-site' {
  if (from.origin === to.origin) return 'same-origin'
  const site = (url: URL): string => `${url.protocol}//${getDomain(url.hostname, { allowPrivateDomains: true }) ?? url.hostname}`
  return site(from) === site(to) ? 'same-site' : 'cross-site'
}

/**
 * The request headers a browser's request to `upstream` carries upstream, in the upstream's
 * terms rather than this proxy's (to the browser, every proxied site is one origin):
 * - Cookie: only that site's cookies (see src/browsing/site-cookies.ts), unless the site has its own
 *   browser origin (`ownOrigin`), where the browser keeps them apart itself;
 * - Referer: the upstream page, cut to its origin across origins as browsers do by default
 *   (`strict-origin-when-cross-origin`), left out when it names no proxied page;
 * - Origin and Sec-Fetch-Site: the requesting page's upstream origin and its relation to the target;
 * - Accept-Encoding: only codings src/browsing/rewrite-body.ts can decode.
 */
export function upstreamBrowserHeaders (headers: IncomingHttpHeaders, upstream: URL, ownOrigin = false): void {
  const cookie = headers.cookie
  if (cookie !== undefined && !ownOrigin) {
    const kept = filterCookieHeader(Array.isArray(cookie) ? cookie.join('; ') : cookie, proxyPrefix(upstream))
    if (kept === undefined) delete headers.cookie
    else headers.cookie = kept
  }
  const from = refererUpstream(headers.referer, headers.host)
  if (headers.referer !== undefined) {
    if (from === undefined) delete headers.referer
    else headers.referer = from.origin === upstream.origin ? from.href : `${from.origin}/`
  }
  const origin = headers.origin
  if (origin !== undefined && origin !== 'null' && headers.host !== undefined && /^https?:\/\//.test(origin)) {
    const originHost = origin.replace(/^https?:\/\//, '')
    const site = siteOfHost(originHost)
    if (site !== undefined) headers.origin = upstreamOf(site)?.origin ?? origin
    else if (originHost === hostOf(headers.host)) {
      if (from === undefined) delete headers.origin
      else headers.origin = from.origin
    }
  }
  // Only codings the rewriter can undo (Chromium also offers zstd, which Node 20 cannot decode).
  const accepted = headers['accept-encoding']
  if (typeof accepted === 'string') {
    const kept = accepted.split(',').map((c) => c.trim()).filter((c) => REWRITABLE_CODINGS.has(c.split(';')[0].trim().toLowerCase()))
    if (kept.length === 0) delete headers['accept-encoding']
    else headers['accept-encoding'] = kept.join(', ')
  }
  const fetchSite = headers['sec-fetch-site']
  if (fetchSite !== undefined && fetchSite !== 'none' && from !== undefined) headers['sec-fetch-site'] = siteRelation(from, upstream)
}

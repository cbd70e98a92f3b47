/**
 * Per-site origins: each upstream origin gets a browser origin of its own under `.localhost`,
 * which browsers resolve to the loopback address without DNS (RFC 6761 §6.3):
 *   http://example.com             <-> example.com.localhost
 *   http://127.0.0.1:3000          <-> 127.0.0.1.3000.localhost
 *   https://example.com:8443       <-> example.com.8443.https.localhost
 * A numeric label before `.localhost` (or before `.https`) is the port (no top-level domain
 * is numeric; an IPv4 address alone has exactly four numeric labels), and `https` is no
 * top-level domain either. IPv6 upstreams have no such name. The upstream must be a
 * plausible host (src/browsing/plausible-host.ts), so `proxy.localhost` can still name this proxy.
 */
import { isIP } from 'node:net'
import { isPlausibleHost } from './plausible-host.ts'
import { proxyPrefix, upstreamOf, type UrlMap } from './proxy-path.ts'

const SUFFIX = '.localhost'

/** The `.localhost` host name of an upstream origin, or undefined (IPv6, or not http(s)). */
export function siteHost (url: URL): string | undefined {
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname.startsWith('[')) return undefined
  return `${url.hostname}${url.port === '' ? '' : `.${url.port}`}${url.protocol === 'https:' ? '.https' : ''}${SUFFIX}`
}

/**
 * The proxy prefix (`/127.0.0.1:3000`, `/https://example.com`) a Host header names in
 * per-site-origin form, or undefined when it is not one (`localhost:8888`, `example.com`).
 */
export function siteOfHost (host: string | undefined): string | undefined {
  if (host === undefined) return undefined
  const name = host.replace(/:\d+$/, '').toLowerCase().replace(/\.$/, '')
  if (!name.endsWith(SUFFIX) || name.length === SUFFIX.length) return undefined
  const labels = name.slice(0, -SUFFIX.length).split('.')
  let scheme = 'http'
  if (labels.length > 1 && labels[labels.length - 1] === 'https') {
    scheme = 'https'
    labels.pop()
  }
  let port: string | undefined
  const numeric = labels.every((label) => /^\d+$/.test(label))
  if (labels.length > 1 && /^\d{1,5}$/.test(labels[labels.length - 1]) && !(numeric && labels.length === 4)) port = labels.pop()
  const hostname = labels.join('.')
  if (numeric && isIP(hostname) !== 4) return undefined
  // `proxy.localhost` may well be this proxy's own name: only plausible hosts are sites.
  if (!isPlausibleHost(port === undefined ? hostname : `${hostname}:${port}`)) return undefined
  const url = upstreamOf(`/${scheme === 'https' ? 'https://' : ''}${hostname}${port === undefined ? '' : `:${port}`}/`)
  return url === undefined ? undefined : proxyPrefix(url)
}

/**
 * The URL map of a page at `document` served under its site origin: the same origin stays a
 * path (it resolves in the browser as it is), another origin becomes its own site origin on
 * this proxy's port.
 */
export function siteOriginMap (document: URL, proxyPort: string): UrlMap {
  return (url) => {
    const path = url.pathname + url.search + url.hash
    if (url.origin === document.origin) return path
    const host = siteHost(url)
    return host === undefined ? undefined : `http://${host}${proxyPort === '' ? '' : `:${proxyPort}`}${path}`
  }
}

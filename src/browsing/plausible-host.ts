/**
 * Decides whether the first segment of a proxy path names an upstream host, or is the
 * first segment of a root-relative path a page asked for (`/css/site.css`,
 * `/api/data.json`, `/favicon.ico`) that slipped past the rewriter.
 */
import { isIP } from 'node:net'
import { parse } from 'tldts'

/** The first segment of a proxy path, scheme included (`https://host`), without query. */
export function firstSegment (path: string): string {
  const rest = path.replace(/^\/+/, '')
  const scheme = /^https?:\/\/?/i.exec(rest)
  const from = scheme === null ? 0 : scheme[0].length
  const end = rest.slice(from).search(/[/?#]/)
  return end === -1 ? rest : rest.slice(0, from + end)
}

/**
 * Plausible hosts: an explicit `http://` / `https://` prefix, an IP literal, `localhost`,
 * any name with an explicit port (`intranet:8080`), or a dotted name whose suffix is a
 * known public suffix (ICANN or private section of the Public Suffix List, via tldts).
 * Not hosts: `css`, `js`, `api`, `favicon.ico`, `app.js`, `data.json`.
 */
export function isPlausibleHost (segment: string): boolean {
  if (/^https?:/i.test(segment)) return true
  if (segment.startsWith('[')) return /^\[[0-9a-f:.]+\](:\d{1,5})?$/i.test(segment)
  const colon = segment.lastIndexOf(':')
  if (colon !== -1) return /^\d{1,5}$/.test(segment.slice(colon + 1)) && segment.length > colon + 1 && colon > 0
  const host = segment.toLowerCase().replace(/\.$/, '')
  if (host === 'localhost' || isIP(host) !== 0) return true
  if (!host.includes('.')) return false
  const parsed = parse(host, { allowPrivateDomains: true })
  return parsed.domain !== null && (parsed.isIcann === true || parsed.isPrivate === true)
}

/**
 * Rewrites the URLs carried by response headers (and by `<meta http-equiv=refresh>`, which
 * has the Refresh syntax) into proxy paths. `resolve` returns undefined to keep a reference.
 */
import type { Resolve } from './css-rewrite.ts'

/** A URL-valued field (Location, Content-Location: RFC 9110 §10.2.2, §8.7). */
export function rewriteUrlField (value: string, resolve: Resolve): string {
  return resolve(value) ?? value
}

/** `Refresh: 5; url=/next` (HTML "shared declarative refresh steps"): the URL, if any, rewritten. */
export function rewriteRefresh (value: string, resolve: Resolve): string {
  const match = /^(\s*\d[\d.]*(?:\s*[;,]\s*|\s+))(url\s*=\s*)?(.*)$/is.exec(value)
  if (match === null) return value
  let target = match[3].trim()
  if (target === '') return value
  let quote = ''
  if ((target[0] === '"' || target[0] === "'")) {
    quote = target[0]
    target = target.slice(1)
    const close = target.indexOf(quote)
    if (close !== -1) target = target.slice(0, close)
  }
  const rewritten = resolve(target)
  if (rewritten === undefined) return value
  return `${match[1]}${match[2] ?? ''}${quote}${rewritten}${quote}`
}

/** `Link: <url>; rel=preload, <url2>; rel=next` (RFC 8288 §3): each target rewritten. */
export function rewriteLink (value: string, resolve: Resolve): string {
  return value.replace(/<([^>]*)>/g, (whole, reference: string) => {
    const rewritten = resolve(reference)
    return rewritten === undefined ? whole : `<${rewritten}>`
  })
}

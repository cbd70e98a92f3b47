import { parseDictionary } from 'structured-headers'
import type { StoredHeaders } from './entry.ts'

/**
 * Targeted cache-control fields (RFC 9213): `CDN-Cache-Control`, and this proxy's own field
 * (CACHE_CONTROL_FIELD, `CachingProxy-Cache-Control` by default) that an origin can use to
 * speak to it alone. The first field of the target list with a valid value replaces
 * Cache-Control and Expires for this cache's decisions (§2.2); the others' semantics are
 * untouched. CDN-Cache-Control is passed on downstream (other CDNs may use it); the proxy's
 * own field is consumed.
 */
export const CDN_CACHE_CONTROL = 'cdn-cache-control'

/** Directives whose value is delta-seconds: an Integer in a targeted field (RFC 9213 §2.1). */
const DELTA_SECONDS = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error'])

/**
 * Serialises a targeted field's Dictionary (RFC 8941) as Cache-Control directives, or
 * undefined when it does not parse: an invalid targeted field is ignored (§2.1).
 */
function asCacheControl (value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined
  let dictionary: ReturnType<typeof parseDictionary>
  try {
    dictionary = parseDictionary(Array.isArray(value) ? value.join(', ') : value)
  } catch {
    return undefined
  }
  const members: string[] = []
  for (const [name, [item]] of dictionary) {
    // §2.1: a directive of the wrong type (`max-age="10000"`) is a parsing error: the field is ignored.
    if (DELTA_SECONDS.has(name) && !(typeof item === 'number' && Number.isInteger(item) && item >= 0)) return undefined
    if (item === true) members.push(name)
    else if (typeof item === 'number' && Number.isInteger(item) && item >= 0) members.push(`${name}=${item}`)
    else if (typeof item === 'string') members.push(`${name}="${item.replace(/["\\]/g, '\\$&')}"`)
    // false, decimals, negative numbers, tokens, byte sequences and inner lists carry no directive this cache reads.
  }
  return members.join(', ')
}

/**
 * The headers this cache decides by: with a valid targeted field, its directives stand as
 * `cache-control` and `expires` is gone; otherwise `headers` itself.
 */
export function policyHeaders (headers: StoredHeaders, targets: readonly string[]): StoredHeaders {
  for (const name of targets) {
    const directives = asCacheControl(headers[name])
    if (directives === undefined) continue
    const { expires: _expires, ...rest } = headers
    return { ...rest, 'cache-control': directives }
  }
  return headers
}

/** The target list: this proxy's own field first, then CDN-Cache-Control. */
export function targetList (ownField: string): string[] {
  return [ownField.toLowerCase(), CDN_CACHE_CONTROL]
}

/** The headers sent to clients: without this proxy's own targeted field. */
export function withoutOwnField (headers: StoredHeaders, ownField: string): StoredHeaders {
  const name = ownField.toLowerCase()
  if (headers[name] === undefined) return headers
  const { [name]: _own, ...rest } = headers
  return rest
}

import type { IncomingHttpHeaders } from 'node:http'

/**
 * The request headers a response varies on (RFC 9110 §12.5.5), lower-cased, de-duplicated
 * and sorted, so header order and case in `Vary` do not matter. '*' when it can never match.
 */
export function varyNames (vary: string | string[] | number | undefined): string[] | '*' | undefined {
  if (vary === undefined) return undefined
  const names = new Set<string>()
  for (const part of (Array.isArray(vary) ? vary.join(',') : String(vary)).split(',')) {
    const name = part.trim().toLowerCase()
    if (name === '*') return '*'
    if (name !== '') names.add(name)
  }
  return names.size === 0 ? undefined : [...names].sort()
}

const ABSENT = '\u0000'

function normalize (value: string | string[] | undefined): string {
  if (value === undefined) return ABSENT
  // RFC 9111 §4.1: values are compared after normalizing whitespace around list separators.
  return (Array.isArray(value) ? value.join(', ') : value).trim().replace(/\s*,\s*/g, ', ').replace(/\s+/g, ' ')
}

/**
 * The key of the variant of `baseKey` that `headers` select; absent headers only match absent
 * headers. `epoch` is the Vary index's own stamp: once the index is deleted (an unsafe
 * request, a purge), the next one gets a new stamp and the old variants are never found again.
 */
export function variantKey (baseKey: string, names: string[], headers: IncomingHttpHeaders, epoch: number): string {
  let key = `${baseKey}\nvary@${epoch}`
  for (const name of names) key += `\n${name}: ${normalize(headers[name])}`
  return key
}

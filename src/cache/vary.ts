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

// Headers whose members are tokens weighted by q (RFC 9110 §12.4.2): equal whatever the
// order of members with equal weight, the case, the spacing and the spelling of q.
const WEIGHTED = new Set(['accept-encoding', 'accept-language', 'accept-charset'])

/** `gzip;q=1.0, BR , identity;q=0` → `br, gzip` (members by weight, then name; q=0 dropped). */
function normalizeWeighted (text: string): string {
  const members: Array<{ name: string, q: number }> = []
  for (const part of text.split(',')) {
    const [rawName, ...params] = part.split(';')
    const name = rawName.trim().toLowerCase()
    if (name === '') continue
    let q = 1
    for (const param of params) {
      const match = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(param)
      if (match !== null) q = Number(match[1])
    }
    if (!Number.isFinite(q) || q > 1 || q < 0) q = 1
    if (q > 0) members.push({ name, q: Math.round(q * 1000) / 1000 })
  }
  members.sort((a, b) => b.q - a.q || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return members.map((m) => (m.q === 1 ? m.name : `${m.name};q=${m.q}`)).join(', ')
}

function normalize (name: string, value: string | string[] | undefined): string {
  if (value === undefined) return ABSENT
  const text = Array.isArray(value) ? value.join(', ') : value
  if (WEIGHTED.has(name)) return normalizeWeighted(text)
  // RFC 9111 §4.1: values are compared after normalizing whitespace around list separators.
  return text.trim().replace(/\s*,\s*/g, ', ').replace(/\s+/g, ' ')
}

/**
 * The key of the variant of `baseKey` that `headers` select; absent headers only match absent
 * headers. `epoch` is the Vary index's own stamp: once the index is deleted (an unsafe
 * request, a purge), the next one gets a new stamp and the old variants are never found again.
 */
export function variantKey (baseKey: string, names: string[], headers: IncomingHttpHeaders, epoch: number): string {
  let key = `${baseKey}\nvary@${epoch}`
  for (const name of names) key += `\n${name}: ${normalize(name, headers[name])}`
  return key
}

/** Cache-Control directives (RFC 9111 §5.2): lower-cased names; `true` for a directive without a value. */
export type Directives = Record<string, string | true>

const DIRECTIVE = /\s*([^\s=,]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?\s*(?:,|$)/y

export function parseCacheControl (value: string | string[] | undefined): Directives {
  const out: Directives = {}
  if (value === undefined) return out
  const text = Array.isArray(value) ? value.join(',') : value
  DIRECTIVE.lastIndex = 0
  while (DIRECTIVE.lastIndex < text.length) {
    const start = DIRECTIVE.lastIndex
    const match = DIRECTIVE.exec(text)
    if (match === null) {
      // Skip a malformed member up to the next comma.
      const comma = text.indexOf(',', start)
      if (comma === -1) break
      DIRECTIVE.lastIndex = comma + 1
      continue
    }
    const name = match[1].toLowerCase()
    const raw = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3]
    // RFC 9111 §4.2.1: of duplicated directives, the first occurrence is used.
    if (!(name in out)) out[name] = raw === undefined || raw === '' ? true : raw
  }
  return out
}

/** A delta-seconds directive value (RFC 9111 §1.2.2), or undefined when absent or invalid. */
export function seconds (directives: Directives, name: string): number | undefined {
  const value = directives[name]
  if (value === undefined) return undefined
  if (value === true) return undefined
  if (!/^\d+$/.test(value)) return undefined
  return Math.min(Number(value), 2 ** 31)
}

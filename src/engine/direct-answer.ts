import { validateHeaderName, validateHeaderValue } from 'node:http'
import type { StoredHeaders } from '../cache/entry.ts'
import type { Answer } from './types.ts'

/**
 * The header block of a plain hit, written with one `res.writeHead(status, pairs)` instead of
 * Fastify's reply machinery (plugins/cache.ts). It must be byte for byte what Fastify writes for
 * the same Answer: `reply.headers(base)`, then `reply.headers(headers)` (a name already in `base`
 * keeps its place, with the new value), then Fastify's own `content-type` for a Buffer without
 * one, then `content-length` (set when missing, corrected when it disagrees except for HEAD).
 * Anything outside that model (upper-case or invalid names and values, a Content-Type Fastify
 * would parse differently, a per-request Content-* or Set-Cookie) gives undefined: the normal path.
 */

/** The stored part of the header block, laid out once per stored response. */
interface Layout {
  /** name, value, name, value, ... in the order Fastify's reply keeps them. */
  pairs: Array<string | string[]>
  /** Where each name's value sits in `pairs` (index of the value). */
  at: Map<string, number>
  /** Index of the Content-Length value, -1 when the stored response has none. */
  contentLength: number
  /** The declared length as a number (NaN when none or not a number). */
  declaredLength: number
  /** The stored response has a Content-Type (Fastify adds application/octet-stream otherwise). */
  typed: boolean
}

// Media types Fastify's ContentType (lib/content-type.js) certainly parses as non-empty: a stored
// type it might read as empty would be overwritten with application/octet-stream there.
const TOKEN = "[\\w!#$%&'*+.^`|~-]+"
const PLAIN_TYPE = new RegExp(`^[ \\t]*${TOKEN}/${TOKEN}[ \\t]*(;.*)?$`)
const PER_REQUEST_REFUSED = new Set(['content-type', 'content-length', 'set-cookie'])

// Keyed by the Answer's `base`, the one headers object every plain hit of a stored response shares.
const layouts = new WeakMap<StoredHeaders, Layout | null>()

function valid (name: string, value: string | string[]): boolean {
  try {
    validateHeaderName(name)
    for (const one of [value].flat()) validateHeaderValue(name, one)
    return true
  } catch {
    return false
  }
}

function layout (base: StoredHeaders): Layout | null {
  const pairs: Array<string | string[]> = []
  const at = new Map<string, number>()
  for (const name of Object.keys(base)) {
    const value = base[name]
    if (name !== name.toLowerCase() || !valid(name, value)) return null
    if (name === 'content-type' && (typeof value !== 'string' || !PLAIN_TYPE.test(value))) return null
    if (name === 'content-length' && (typeof value !== 'string' || value === '')) return null
    at.set(name, pairs.length + 1)
    pairs.push(name, Array.isArray(value) ? [...value] : value)
  }
  const contentLength = at.get('content-length') ?? -1
  return {
    pairs,
    at,
    contentLength,
    declaredLength: contentLength === -1 ? NaN : Number(pairs[contentLength]),
    typed: at.has('content-type')
  }
}

function layoutOf (base: StoredHeaders): Layout | null {
  let found = layouts.get(base)
  if (found === undefined) {
    found = layout(base)
    layouts.set(base, found)
  }
  return found
}

/**
 * The `[name, value, ...]` list to write for `answer`, or undefined when the answer is not a
 * plain hit this function can lay out exactly as Fastify would (see above).
 */
export function directHeaders (answer: Answer, head: boolean): Array<string | string[]> | undefined {
  const { base, headers, status, body } = answer
  if (base === undefined || headers === undefined || status === undefined || !Buffer.isBuffer(body)) return undefined
  if (answer.error !== undefined || answer.clear === true || (answer.remove !== undefined && answer.remove.length > 0)) return undefined
  // Fastify strips or skips the body of these (RFC 9110 §6.4.1): left to it.
  if (status < 200 || status > 599 || status === 204 || status === 304) return undefined
  const stored = layoutOf(base)
  if (stored === null) return undefined
  const pairs = stored.pairs.slice()
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    if (PER_REQUEST_REFUSED.has(name) || name !== name.toLowerCase()) return undefined
    const index = stored.at.get(name)
    if (index === undefined) pairs.push(name, value)
    else pairs[index] = value
  }
  if (!stored.typed) pairs.push('content-type', 'application/octet-stream')
  if (stored.contentLength === -1) pairs.push('content-length', String(body.length))
  else if (!head && stored.declaredLength !== body.length) pairs[stored.contentLength] = String(body.length)
  return pairs
}

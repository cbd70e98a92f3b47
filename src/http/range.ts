/**
 * Byte range requests served from a stored response (RFC 9110 §14). Pure: no I/O, no clock.
 * The caller applies this only to GET; a server must ignore Range for other methods (§14.2).
 */
import { strongMatch } from './conditional.ts'
import { parseHttpDate } from './http-date.ts'

export type RangeResult =
  | { kind: 'full' }
  | { kind: 'partial', start: number, end: number, contentRange: string }
  | { kind: 'unsatisfiable', contentRange: string }

export interface RangeValidators {
  etag?: string
  lastModified?: string
  /** The stored Date, used to tell whether Last-Modified is a strong validator (§8.8.2.2). */
  date?: string
}

const INT_RANGE = /^(\d+)-(\d*)$/ // int-range = first-pos "-" [ last-pos ] (§14.1.1)
const SUFFIX_RANGE = /^-(\d+)$/ // suffix-range = "-" suffix-length (§14.1.1)

/**
 * If-Range (§13.1.5): true when the stored representation is unchanged, so the Range applies.
 * An entity-tag uses strong comparison, so a weak tag (either side) never matches. A date must
 * exactly match Last-Modified, and Last-Modified must be strong: at least one second before
 * Date, when Date is known (§8.8.2.2).
 */
function ifRangeMatches (ifRange: string, stored: RangeValidators): boolean {
  const value = ifRange.trim()
  if (value.startsWith('"') || value.startsWith('W/')) { // §13.1.5: a DQUOTE marks an entity-tag
    return strongMatch(value, stored.etag)
  }
  const since = parseHttpDate(value)
  const modified = parseHttpDate(stored.lastModified)
  if (since === undefined || modified === undefined || since !== modified) return false
  const date = parseHttpDate(stored.date)
  return date === undefined || date - modified >= 1000
}

/**
 * Decides how to answer a Range request (§14.2) for a stored body of `length` bytes:
 * - `full`: no Range, a unit other than bytes, a malformed ranges-specifier (ignored, §14.2),
 *   If-Range not matching (§13.1.5), or several ranges. Multi-range (multipart/byteranges) is
 *   not supported; a server MAY ignore Range and send the whole 200 (§14.2).
 * - `partial`: one satisfiable range; `end` is inclusive and clamped to length - 1 (§14.1.1).
 * - `unsatisfiable`: 416 with `Content-Range: bytes *\/length` (§15.5.17, §14.4): first-pos at
 *   or beyond the length, or a zero suffix-length.
 * A zero-length body can satisfy only a non-zero suffix-range (§14.1.1), and no Content-Range can
 * describe an empty part, so that case is answered `full` (the whole, empty, representation).
 */
export function evaluateRange (
  rangeHeader: string | undefined,
  ifRange: string | undefined,
  length: number,
  stored: RangeValidators
): RangeResult {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid length: ${length}`)
  if (rangeHeader === undefined) return full()
  // If-Range is evaluated before the Range itself (§13.2.2 step 5), so a stale client never gets 416.
  if (ifRange !== undefined && ifRange.trim() !== '' && !ifRangeMatches(ifRange, stored)) return full()

  const eq = rangeHeader.indexOf('=')
  if (eq < 0) return full()
  if (rangeHeader.slice(0, eq).trim().toLowerCase() !== 'bytes') return full() // units are case-insensitive (§14.1)
  // range-set = 1#range-spec; empty list members are ignored (§5.6.1).
  const specs = rangeHeader.slice(eq + 1).split(',').map((spec) => spec.trim()).filter((spec) => spec !== '')
  if (specs.length !== 1) return full()
  const spec = specs[0]

  const suffix = SUFFIX_RANGE.exec(spec)
  if (suffix !== null) {
    const suffixLength = Number(suffix[1])
    if (suffixLength === 0) return unsatisfiable(length) // §14.1.1: only a non-zero suffix is satisfiable
    if (length === 0) return full()
    // A suffix longer than the representation selects all of it (§14.1.2).
    return partial(Math.max(0, length - suffixLength), length - 1, length)
  }

  const int = INT_RANGE.exec(spec)
  if (int === null) return full() // invalid ranges-specifier: ignore (§14.2)
  if (int[2] !== '' && BigInt(int[2]) < BigInt(int[1])) return full() // last-pos < first-pos is invalid (§14.1.1)
  const start = Number(int[1])
  if (start >= length) return unsatisfiable(length) // satisfiable only if first-pos < length (§14.1.1)
  const end = int[2] === '' ? length - 1 : Math.min(Number(int[2]), length - 1)
  return partial(start, end, length)
}

function full (): RangeResult {
  return { kind: 'full' }
}

function partial (start: number, end: number, length: number): RangeResult {
  return { kind: 'partial', start, end, contentRange: `bytes ${start}-${end}/${length}` } // §14.4
}

function unsatisfiable (length: number): RangeResult {
  return { kind: 'unsatisfiable', contentRange: `bytes */${length}` } // §14.4 unsatisfied-range
}

/** A stored partial response: bytes `start`..`end` (inclusive) of a `complete`-byte representation. */
export interface StoredPart {
  start: number
  end: number
  complete: number
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+)$/i // §14.4: unit SP first-pos "-" last-pos "/" complete-length

/**
 * The part a 206 carries (§14.4): one satisfied range of a representation of known length, or
 * undefined (an unknown length `*`, an unsatisfied range, several values, anything malformed).
 */
export function parseContentRange (value: string | string[] | undefined): StoredPart | undefined {
  if (typeof value !== 'string') return undefined
  const match = CONTENT_RANGE.exec(value.trim())
  if (match === null) return undefined
  const [start, end, complete] = [Number(match[1]), Number(match[2]), Number(match[3])]
  if (![start, end, complete].every(Number.isSafeInteger) || start > end || end >= complete) return undefined
  return { start, end, complete }
}

/**
 * A Range request answered from a stored partial response (RFC 9111 §3.3): the requested range,
 * resolved against the complete length (int, open or suffix), when it lies inside the stored
 * part; `miss` otherwise (no Range, several ranges, a failed If-Range, an unsatisfiable range:
 * the origin decides those).
 */
export function evaluateStoredPartial (
  rangeHeader: string | undefined,
  ifRange: string | undefined,
  part: StoredPart,
  stored: RangeValidators
): { kind: 'partial', start: number, end: number, contentRange: string } | { kind: 'miss' } {
  if (rangeHeader === undefined) return { kind: 'miss' }
  const range = evaluateRange(rangeHeader, ifRange, part.complete, stored)
  if (range.kind !== 'partial' || range.start < part.start || range.end > part.end) return { kind: 'miss' }
  return range
}

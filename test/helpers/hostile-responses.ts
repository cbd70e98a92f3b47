import { Random } from './random.ts'
import { chunked, rawHead, type RawAnswer } from './raw-origin.ts'

/**
 * Seeded hostile origin responses: every header a cache reads, duplicated, sent on two
 * lines with different values, empty, huge or malformed; odd status codes; conflicting
 * framing; early closes, resets, slow heads and bodies, gzip garbage.
 */
export interface HostileCase {
  index: number
  /** What was done, for failure messages. */
  label: string
  answer: RawAnswer
  /** The final status the origin meant to send. */
  status: number
  /** The body the origin meant to send. */
  body: Buffer
  /** A complete, correctly framed response: a client must get it byte-exact (or a clean 502/504 when `mayFail`). */
  valid: boolean
  /** A clean 502/504 is an acceptable answer too (huge heads, odd statuses, slow heads near the timeout). */
  mayFail: boolean
  setCookie: boolean
}

export const CACHE_HEADERS = ['Cache-Control', 'Pragma', 'Expires', 'Age', 'Date', 'Last-Modified', 'ETag', 'Vary', 'Content-Length',
  'Content-Range', 'Location', 'Content-Location', 'Set-Cookie', 'Warning'] as const
type CacheHeader = typeof CACHE_HEADERS[number]
export const MUTATIONS = ['duplicated', 'array', 'empty', 'huge', 'malformed'] as const

const day = 86_400_000
const httpDate = (offsetMs: number): string => new Date(Date.now() + offsetMs).toUTCString()

/** A plausible value and malformed ones for each header (printable bytes only: the parser must accept the line). */
const VALUES: Record<CacheHeader, { good: () => string[], bad: string[] }> = {
  'Cache-Control': { good: () => ['public, max-age=600', 'max-age=60', 'public'], bad: ['max-age=abc', 'max-age="600"', ',,,', '=;=', 'MAX-AGE=600, PRIVATE', 'no-cache="set-cookie', 'max-age=99999999999999999999', 's-maxage=-1', 'NO-STORE, max-age=600', 'max-age=600,,,private'] },
  Pragma: { good: () => ['no-cache', 'x-foo'], bad: ['=', 'no-cache, =', '"'] },
  Expires: { good: () => [httpDate(600_000), httpDate(day)], bad: ['0', '-1', 'tomorrow', 'Thu, 99 Foo 9999 99:99:99 GMT', httpDate(-day)] },
  Age: { good: () => ['5', '0'], bad: ['-5', 'abc', '99999999999999999999', '1.5', '5, 6'] },
  Date: { good: () => [httpDate(0), httpDate(-1000)], bad: ['yesterday', '0', 'Mon, 32 Dec 2026 25:61:61 GMT'] },
  'Last-Modified': { good: () => [httpDate(-day), httpDate(-2 * day)], bad: ['never', httpDate(10 * day), '1'] },
  ETag: { good: () => ['"v1"', 'W/"v2"'], bad: ['unquoted', 'W/', '"unterminated', '""""'] },
  Vary: { good: () => ['Accept-Encoding', 'Accept'], bad: [',,', '*', 'Accept-Encoding, *', 'X-Nonexistent', 'accept-encoding, ACCEPT-ENCODING', '"quoted"'] },
  'Content-Length': { good: () => [], bad: ['abc', '-1', '1e3', '0x10', '99999999999999999999'] },
  'Content-Range': { good: () => ['bytes 0-9/10', 'bytes */100'], bad: ['bytes */abc', 'bytes 5-1/10', 'items 0-1/2', 'bytes'] },
  Location: { good: () => ['http://127.0.0.1/x', '/relative'], bad: ['http://[::1', '//evil.test', ':::', 'http://%zz/', 'javascript:alert(1)'] },
  'Content-Location': { good: () => ['/other', 'http://127.0.0.1/y'], bad: ['http://[::1', '::', 'http://%zz/'] },
  'Set-Cookie': { good: () => ['sid=abc123; Path=/; HttpOnly', 'theme=dark'], bad: ['=;;', 'sid', '; Path=/'] },
  Warning: { good: () => ['110 - "Response is Stale"', '199 proxy "misc"'], bad: ['999', 'abc', '110'] }
}

const STATUSES = [200, 200, 200, 200, 200, 200, 203, 404, 410, 500, 301]
const REASONS: Record<number, string> = { 200: 'OK', 203: 'Non-Authoritative Information', 301: 'Moved Permanently', 404: 'Not Found', 410: 'Gone', 500: 'Internal Server Error' }

function bodyFor (r: Random, index: number): Buffer {
  const size = r.chance(0.1) ? 0 : r.chance(0.2) ? 20_000 + r.int(40_000) : r.int(4000)
  return Buffer.concat([Buffer.from(`case ${index} `), r.bytes(size)])
}

/** Frames `body` with Content-Length or chunked, appended to `headers`. */
function framed (r: Random, headers: Array<[string, string]>, body: Buffer): Buffer {
  if (r.chance(0.5)) {
    headers.push(['Content-Length', String(body.length)])
    return body
  }
  headers.push(['Transfer-Encoding', 'chunked'])
  return chunked(body, 1 + r.int(8192))
}

function baseHeaders (r: Random, status: number): Array<[string, string]> {
  const headers: Array<[string, string]> = [['Content-Type', 'application/octet-stream']]
  if (r.chance(0.8)) headers.push(['Cache-Control', r.pick(['public, max-age=600', 'max-age=600', 'public, max-age=600, stale-if-error=60'])])
  if (r.chance(0.5)) headers.push(['Date', httpDate(0)])
  if (status === 301) headers.push(['Location', '/elsewhere'])
  return headers
}

/** A header mutation: the extra header lines, and whether the response may fairly fail. */
function mutate (r: Random, name: CacheHeader): { lines: Array<[string, string]>, label: string, mayFail: boolean, breaksFraming: boolean } {
  const kind = r.pick(MUTATIONS)
  const { good, bad } = VALUES[name]
  const goods = good()
  const value = (): string => goods.length > 0 ? r.pick(goods) : r.pick(bad)
  const label = `${name} ${kind}`
  const framing = name === 'Content-Length'
  if (framing) {
    // Any tampering with Content-Length is a framing error the parser must refuse.
    const n = String(100 + r.int(100))
    const lines: Array<[string, string]> = kind === 'duplicated'
      ? [[name, n], [name, n]]
      : kind === 'array' ? [[name, n], [name, String(Number(n) + 5)]] : kind === 'empty' ? [[name, '']] : kind === 'huge' ? [[name, '1'.repeat(8192 + r.int(52 * 1024))]] : [[name, r.pick(bad)]]
    return { lines, label, mayFail: true, breaksFraming: true }
  }
  switch (kind) {
    case 'duplicated': { const v = value(); return { lines: [[name, v], [name, v]], label, mayFail: false, breaksFraming: false } }
    case 'array': return { lines: [[name, value()], [name, r.chance(0.5) ? value() : r.pick(bad)]], label, mayFail: false, breaksFraming: false }
    case 'empty': return { lines: [[name, '']], label, mayFail: false, breaksFraming: false }
    case 'huge': {
      const size = 8192 + r.int(52 * 1024)
      return { lines: [[name, `${value()}, ${'x'.repeat(size)}`]], label: `${label} (${size} B)`, mayFail: true, breaksFraming: false }
    }
    default: return { lines: [[name, r.pick(bad)]], label, mayFail: false, breaksFraming: false }
  }
}

/** A response with mutated cache headers, correctly framed unless Content-Length was the one mutated. */
function headerCase (r: Random, index: number): HostileCase {
  const status = r.pick(STATUSES)
  const body = bodyFor(r, index)
  const headers = baseHeaders(r, status)
  const labels: string[] = []
  let mayFail = false
  let broken = false
  const count = 1 + r.int(3)
  for (let i = 0; i < count; i++) {
    const m = mutate(r, r.pick(CACHE_HEADERS))
    if (m.breaksFraming && broken) continue
    headers.push(...m.lines)
    labels.push(m.label)
    mayFail ||= m.mayFail
    broken ||= m.breaksFraming
  }
  const setCookie = headers.some(([name]) => name === 'Set-Cookie')
  const payload = broken ? body : framed(r, headers, body)
  return { index, label: labels.join(' + '), status, body, valid: !broken, mayFail, setCookie, answer: { parts: [rawHead(`HTTP/1.1 ${status} ${REASONS[status]}`, headers), payload], end: 'keep' } }
}

/** Odd statuses, framing conflicts, broken bodies, slowness and garbage. */
function otherCase (r: Random, index: number): HostileCase {
  const body = bodyFor(r, index)
  const headers = baseHeaders(r, 200)
  const plain = (label: string, over: Partial<HostileCase>): HostileCase => {
    const payload = framed(r, headers, body)
    return { index, label, status: 200, body, valid: true, mayFail: false, setCookie: false, answer: { parts: [rawHead('HTTP/1.1 200 OK', headers), payload], end: 'keep' }, ...over }
  }
  const kind = r.pick(['1xx', 'odd-status', 'zero-status', 'cl-te', 'two-cl', 'bad-chunk', 'early-close', 'early-close-chunked', 'reset', 'slow-head', 'slow-body', 'stall', 'gzip-garbage', 'close-delimited'])
  switch (kind) {
    case '1xx': {
      // RFC 9110 §15.2: a client must parse 1xx responses it did not ask for. undici (7.x)
      // drops the connection on an unsolicited 100 ('bad response'), so a clean 502 is
      // accepted there; a 103 must be passed over.
      const hundred = r.chance(0.5)
      const informational = hundred ? 'HTTP/1.1 100 Continue\r\n\r\n' : 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n'
      const c = plain(hundred ? '100 then 200' : '103 then 200', { mayFail: hundred })
      c.answer.parts.unshift(Buffer.from(informational))
      return c
    }
    case 'odd-status': {
      const status = r.pick([999, 600, 601])
      const payload = framed(r, headers, body)
      return { index, label: `status ${status}`, status, body, valid: false, mayFail: true, setCookie: false, answer: { parts: [rawHead(`HTTP/1.1 ${status} Odd`, headers), payload], end: 'keep' } }
    }
    case 'zero-status': {
      const line = r.pick(['HTTP/1.1 0 Zero', 'HTTP/1.1 000 Zero', 'HTTP/1.1 abc Letters', 'HTTP/1.1 20 Short'])
      headers.push(['Content-Length', String(body.length)])
      return { index, label: line, status: 0, body, valid: false, mayFail: true, setCookie: false, answer: { parts: [rawHead(line, headers), body], end: 'close' } }
    }
    case 'cl-te': {
      headers.push(['Content-Length', String(body.length)], ['Transfer-Encoding', 'chunked'])
      return { index, label: kind, status: 200, body, valid: false, mayFail: true, setCookie: false, answer: { parts: [rawHead('HTTP/1.1 200 OK', headers), chunked(body)], end: 'close' } }
    }
    case 'two-cl': {
      headers.push(['Content-Length', String(body.length)], ['Content-Length', String(body.length + 7)])
      return { index, label: kind, status: 200, body, valid: false, mayFail: true, setCookie: false, answer: { parts: [rawHead('HTTP/1.1 200 OK', headers), body, Buffer.alloc(7, 0x61)], end: 'close' } }
    }
    case 'bad-chunk': {
      headers.push(['Transfer-Encoding', 'chunked'])
      const half = body.subarray(0, body.length >> 1)
      const size = r.pick(['zz', '-1', 'fffffffffffffffffff', '1;' + 'x'.repeat(100), ''])
      const bad = Buffer.concat([Buffer.from(`${half.length.toString(16)}\r\n`), half, Buffer.from(`\r\n${size}\r\n`), body.subarray(half.length), Buffer.from('\r\n0\r\n\r\n')])
      return { index, label: `bad chunk size ${JSON.stringify(size.slice(0, 12))}`, status: 200, body, valid: false, mayFail: true, setCookie: false, answer: { parts: [rawHead('HTTP/1.1 200 OK', headers), bad], end: 'close' } }
    }
    case 'early-close':
    case 'reset': {
      const whole = Buffer.concat([body, r.bytes(2000)]) // at least 2000 bytes are never sent
      headers.push(['Content-Length', String(whole.length)])
      return { index, label: kind, status: 200, body: whole, valid: false, mayFail: true, setCookie: false, answer: { parts: [rawHead('HTTP/1.1 200 OK', headers), whole.subarray(0, r.int(body.length + 1))], gapMs: 20, end: kind === 'reset' ? 'reset' : 'close' } }
    }
    case 'early-close-chunked': {
      headers.push(['Transfer-Encoding', 'chunked'])
      const encoded = chunked(body, 512)
      return { index, label: kind, status: 200, body, valid: false, mayFail: true, setCookie: false, answer: { parts: [rawHead('HTTP/1.1 200 OK', headers), encoded.subarray(0, encoded.length - 5 - r.int(Math.min(encoded.length - 5, 600)))], gapMs: 20, end: r.chance(0.5) ? 'close' : 'reset' } }
    }
    case 'slow-head': {
      const delayMs = r.chance(0.8) ? 100 + r.int(1000) : 2600 + r.int(600)
      const c = plain(`slow head ${delayMs} ms`, { mayFail: delayMs > 1200 })
      c.answer.delayMs = delayMs
      return c
    }
    case 'slow-body': {
      headers.push(['Content-Length', String(body.length)])
      const cut = Math.max(1, body.length >> 1)
      const gapMs = 100 + r.int(500)
      return { index, label: `slow body (${gapMs} ms gap)`, status: 200, body, valid: true, mayFail: false, setCookie: false, answer: { parts: [rawHead('HTTP/1.1 200 OK', headers), body.subarray(0, cut), body.subarray(cut)], gapMs, end: 'keep' } }
    }
    case 'stall': {
      headers.push(['Content-Length', String(body.length + 1000)])
      return { index, label: 'stall mid-body', status: 200, body: Buffer.concat([body, Buffer.alloc(1000)]), valid: false, mayFail: true, setCookie: false, answer: { parts: [rawHead('HTTP/1.1 200 OK', headers), body], end: 'stall' } }
    }
    case 'gzip-garbage': {
      headers.push(['Content-Encoding', 'gzip'])
      return plain(kind, { body: Buffer.from(body) })
    }
    default: { // close-delimited: legal HTTP/1.1, ended by the close of the connection
      headers.push(['Connection', 'close'])
      return { index, label: kind, status: 200, body, valid: true, mayFail: false, setCookie: false, answer: { parts: [rawHead('HTTP/1.1 200 OK', headers), body], end: 'close' } }
    }
  }
}

/** `count` hostile responses from `seed`: about two thirds header mutations, the rest broken framing, statuses and timing. */
export function hostileCases (seed: number, count: number): HostileCase[] {
  const r = new Random(seed)
  return Array.from({ length: count }, (_v, index) => (r.chance(0.65) ? headerCase(r, index) : otherCase(r, index)))
}

const OTHER_KINDS = ['100 then 200', '103 then 200', 'status 999', 'status 600', 'HTTP/1.1 0 ', 'HTTP/1.1 000 ', 'cl-te', 'two-cl', 'bad chunk size',
  'early-close', 'early-close-chunked', 'reset', 'slow head', 'slow body', 'stall mid-body', 'gzip-garbage', 'close-delimited']

/** The hostile kinds (each header × each mutation, and the other kinds) that no case in `cases` exercises. */
export function coverageGaps (cases: HostileCase[]): string[] {
  const labels = cases.map((c) => c.label)
  const wanted = [...CACHE_HEADERS.flatMap((name) => MUTATIONS.map((kind) => `${name} ${kind}`)), ...OTHER_KINDS]
  return wanted.filter((kind) => !labels.some((label) => label.includes(kind)))
}

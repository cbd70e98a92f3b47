/**
 * Builds the stream that rewrites one response body on its way to a browser: undo the
 * Content-Encoding, decode the charset, rewrite (HTML streaming; CSS per sheet), and emit
 * UTF-8 with no Content-Encoding (the caller says `charset=utf-8` in Content-Type).
 */
import { Readable, Transform, pipeline } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import { TextDecoder } from 'node:util'
import { RewritingStream } from 'parse5-html-rewriting-stream'
import { rewriteCss } from './css-rewrite.ts'
import { createHtmlRewriter, type StartTag } from './html-rewrite.ts'
import { toProxyPath, type UrlMap } from './proxy-path.ts'

export type BodyKind = 'html' | 'css'

/** What kind of body a Content-Type announces, if it is one this proxy rewrites. */
export function rewritableKind (contentType: string | undefined): BodyKind | undefined {
  const essence = contentType?.split(';')[0].trim().toLowerCase()
  if (essence === 'text/html') return 'html'
  if (essence === 'text/css') return 'css'
  return undefined
}

/** The charset parameter of a Content-Type, lower-cased. */
export function charsetOf (contentType: string | undefined): string | undefined {
  const match = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')
  return match === null ? undefined : match[1].toLowerCase()
}

/** Decoders for a Content-Encoding list (applied in reverse, RFC 9110 §8.4); undefined when one is unknown. */
export function decoders (contentEncoding: string | undefined): Transform[] | undefined {
  const codings = (contentEncoding ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity')
  const out: Transform[] = []
  for (const coding of codings.reverse()) {
    if (coding === 'gzip' || coding === 'x-gzip') out.push(createGunzip())
    else if (coding === 'deflate') out.push(createInflate())
    else if (coding === 'br') out.push(createBrotliDecompress())
    else return undefined
  }
  return out
}

/**
 * The charset a `<meta>` in the first bytes declares (HTML "prescan a byte stream"), read
 * with the HTML tokenizer over those bytes as Latin-1.
 */
export function sniffHtmlCharset (head: Buffer): string | undefined {
  const parser = new RewritingStream()
  let found: string | undefined
  parser.on('startTag', (tag: StartTag) => {
    if (found !== undefined || tag.tagName !== 'meta') return
    const attr = (name: string): string | undefined => tag.attrs.find((a) => a.name === name)?.value
    const charset = attr('charset') ?? (attr('http-equiv')?.toLowerCase() === 'content-type' ? charsetOf(`;${attr('content') ?? ''}`) : undefined)
    if (charset !== undefined && charset.trim() !== '') found = charset.trim().toLowerCase()
  })
  parser.resume()
  parser.end(head.toString('latin1'))
  return found
}

function textDecoder (label: string | undefined): TextDecoder {
  try {
    // HTML §13.2.3.3: a page declaring UTF-16 in-band is read as UTF-8.
    return new TextDecoder(label === undefined || label.startsWith('utf-16') ? 'utf-8' : label)
  } catch {
    return new TextDecoder('utf-8')
  }
}

/** Bytes in, text out; the charset comes from the header, else a BOM or the document's own declaration. */
function charsetDecoder (kind: BodyKind, declared: string | undefined): Transform {
  let decoder: TextDecoder | undefined = declared === undefined ? undefined : textDecoder(declared)
  const pending: Buffer[] = []
  let pendingBytes = 0
  const choose = (): TextDecoder => {
    const head = Buffer.concat(pending, pendingBytes)
    if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return textDecoder('utf-8')
    if (kind === 'html') return textDecoder(sniffHtmlCharset(head.subarray(0, 1024)))
    const rule = /^@charset "([^"]+)";/.exec(head.toString('latin1', 0, 128)) // CSS Syntax 3 §3.2
    return textDecoder(rule?.[1].toLowerCase())
  }
  return new Transform({
    encoding: 'utf8',
    transform (chunk: Buffer, _encoding, callback) {
      if (decoder === undefined) {
        pending.push(chunk)
        pendingBytes += chunk.length
        if (pendingBytes < 1024) return callback()
        decoder = choose()
        chunk = Buffer.concat(pending, pendingBytes)
      }
      callback(null, decoder.decode(chunk, { stream: true }))
    },
    flush (callback) {
      if (decoder === undefined) {
        decoder = choose()
        callback(null, decoder.decode(Buffer.concat(pending, pendingBytes)))
        return
      }
      callback(null, decoder.decode())
    }
  })
}

/** Collects a style sheet (up to `limit` characters) and rewrites it whole; a larger one passes through as it is. */
function cssRewriter (url: URL, limit: number, map: UrlMap | undefined): Transform {
  let parts: string[] | undefined = []
  let size = 0
  const resolve = (reference: string): string | undefined => toProxyPath(reference, url, map)
  return new Transform({
    encoding: 'utf8',
    decodeStrings: false,
    transform (chunk: string, _encoding, callback) {
      if (parts === undefined) return callback(null, chunk)
      parts.push(chunk)
      size += chunk.length
      if (size <= limit) return callback()
      const all = parts.join('')
      parts = undefined
      callback(null, all)
    },
    flush (callback) {
      callback(null, parts === undefined ? '' : rewriteCss(parts.join(''), resolve))
    }
  })
}

export interface BodyRewrite {
  kind: BodyKind
  /** The upstream URL of the document (the base of its relative URLs). */
  url: URL
  contentEncoding: string | undefined
  charset: string | undefined
  /** Markup for the top of an HTML `<head>`. */
  head?: string
  /** Largest style sheet rewritten, in characters. */
  maxCssChars: number
  /** How absolute URLs are written (default: proxy paths). */
  map?: UrlMap
  /** Leave `<meta name=referrer>` as it is (see HtmlRewriteOptions). */
  keepReferrerPolicy?: boolean
}

/**
 * Pipes `source` through the rewrite; undefined when the Content-Encoding is unknown (the
 * body then goes out untouched). Errors (a corrupt gzip body) end the returned stream.
 */
export function rewriteBody (source: Readable | Buffer, options: BodyRewrite): Readable | undefined {
  const decode = decoders(options.contentEncoding)
  if (decode === undefined) return undefined
  const input = Buffer.isBuffer(source) ? Readable.from([source]) : source
  const rewrite = options.kind === 'html'
    ? createHtmlRewriter({ url: options.url, head: options.head, map: options.map, keepReferrerPolicy: options.keepReferrerPolicy })
    : cssRewriter(options.url, options.maxCssChars, options.map)
  // A body the origin encoded wrongly is its fault: 502 when nothing was sent yet (the error
  // handler reads statusCode), else the response is cut short.
  for (const decoder of decode) {
    decoder.once('error', (error: Error & { statusCode?: number, code?: string }) => {
      Object.assign(error, { statusCode: 502, code: 'CPX_UPSTREAM_BAD_BODY', message: `the upstream's ${options.contentEncoding ?? ''} body could not be decoded: ${error.message}` })
    })
  }
  const stages = [...decode, charsetDecoder(options.kind, options.charset), rewrite]
  return pipeline(input, ...(stages as [Transform]), () => {}) as unknown as Readable
}

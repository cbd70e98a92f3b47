/**
 * Streaming HTML rewriter (parse5-html-rewriting-stream: the HTML tokenizer with the tree
 * builder's feedback, so `<script>`, `<style>`, `<textarea>` and comments are tokenized as a
 * browser does). Every URL the browser would fetch or navigate to becomes a proxy path;
 * tags that need no change are copied byte for byte.
 */
import { RewritingStream } from 'parse5-html-rewriting-stream'
import { rewriteCss } from './css-rewrite.ts'
import { rewriteRefresh } from './header-rewrite.ts'
import { toProxyPath, type UrlMap } from './proxy-path.ts'

/** A start tag as parse5's SAX parser reports it. */
export interface StartTag {
  tagName: string
  attrs: Array<{ name: string, value: string, prefix?: string, namespace?: string }>
  selfClosing: boolean
}

export interface HtmlRewriteOptions {
  /** The upstream URL of the document. */
  url: URL
  /** Markup inserted at the top of `<head>` (or before the first element when there is none). */
  head?: string
  /** How absolute URLs are written (default: proxy paths). */
  map?: UrlMap
  /** Leave `<meta name=referrer>` as it is (the page is not routed by its Referer). */
  keepReferrerPolicy?: boolean
}

// Attributes holding one URL, on any element (`xlink:href` too: parse5 gives its name as `href`).
const URL_ATTRIBUTES = new Set(['href', 'src', 'action', 'formaction', 'poster', 'background', 'manifest', 'longdesc'])
const SRCSET_ATTRIBUTES = new Set(['srcset', 'imagesrcset'])
// Referrer policies that keep the page's proxy path from the proxy, which needs it to route
// root-relative requests (README "Path-prefix mode"). Every proxied URL is same-origin to
// the browser, so `same-origin` sends it to the proxy only.
export const HIDING_POLICIES = new Set(['no-referrer', 'origin', 'strict-origin', 'never', 'none'])

/**
 * Rewrites a srcset (HTML "parse a srcset attribute"): candidates are a URL (no whitespace,
 * trailing commas not part of it) and descriptors up to the next comma.
 */
export function rewriteSrcset (value: string, resolve: (reference: string) => string | undefined): string {
  let out = ''
  let i = 0
  while (i < value.length) {
    const start = i
    while (i < value.length && /[\s,]/.test(value[i])) i++
    out += value.slice(start, i)
    if (i >= value.length) break
    let end = i
    while (end < value.length && !/\s/.test(value[end])) end++
    let url = value.slice(i, end)
    let trailing = ''
    while (url.endsWith(',')) {
      url = url.slice(0, -1)
      trailing += ','
    }
    out += (resolve(url) ?? url) + trailing
    i = end
    if (trailing !== '') continue
    const descriptors = i
    let depth = 0
    while (i < value.length && (value[i] !== ',' || depth > 0)) {
      if (value[i] === '(') depth++
      else if (value[i] === ')') depth = Math.max(0, depth - 1)
      i++
    }
    out += value.slice(descriptors, i)
  }
  return out
}

/** A Transform (string in, string out) that rewrites one HTML document. */
export function createHtmlRewriter (options: HtmlRewriteOptions): RewritingStream {
  const rewriter = new RewritingStream()
  let base = options.url
  let baseSeen = false
  let injected = options.head === undefined
  let style: string[] | undefined
  const resolve = (reference: string): string | undefined => toProxyPath(reference, base, options.map)

  function inject (): void {
    if (!injected) rewriter.emitRaw(options.head as string)
    injected = true
  }

  rewriter.on('startTag', (tag: StartTag, raw: string) => {
    const name = tag.tagName
    if (!injected && name !== 'html' && name !== 'head') inject()
    if (name === 'base' && !baseSeen) {
      const href = tag.attrs.find((attr) => attr.name === 'href')
      if (href !== undefined) {
        baseSeen = true // HTML: only the first <base href> counts
        try { base = new URL(href.value.trim(), options.url) } catch {}
      }
    }
    if (name === 'meta' && tag.attrs.some((attr) => attr.name === 'http-equiv' && /^content-security-policy(-report-only)?$/i.test(attr.value.trim()))) {
      return // names the upstream hosts, not this proxy: it would block the rewritten page
    }
    if (rewriteAttributes(tag, resolve, options.keepReferrerPolicy !== true)) rewriter.emitStartTag(tag)
    else rewriter.emitRaw(raw)
    if (name === 'head') inject()
    if (name === 'style' && !tag.selfClosing) style = []
  })

  rewriter.on('text', (text: { text: string }, raw: string) => {
    if (style !== undefined) style.push(text.text)
    else rewriter.emitRaw(raw)
  })

  rewriter.on('endTag', (_tag: unknown, raw: string) => {
    if (style !== undefined) {
      rewriter.emitRaw(rewriteCss(style.join(''), resolve))
      style = undefined
    }
    rewriter.emitRaw(raw)
  })

  // A document that ends inside <style> still gets what was read of it: the parser emits its
  // last text while finishing, before the readable side ends.
  const final = rewriter._final.bind(rewriter)
  rewriter._final = (callback: (error?: Error | null) => void) => {
    final((error?: Error | null) => {
      if (style !== undefined) rewriter.emitRaw(rewriteCss(style.join(''), resolve))
      style = undefined
      callback(error)
    })
  }
  return rewriter
}

/** Rewrites the URL-bearing attributes of a start tag in place; true when anything changed. */
function rewriteAttributes (tag: StartTag, resolve: (reference: string) => string | undefined, referrer: boolean): boolean {
  let changed = false
  const kept: StartTag['attrs'] = []
  const isRefresh = tag.tagName === 'meta' && tag.attrs.some((attr) => attr.name === 'http-equiv' && attr.value.trim().toLowerCase() === 'refresh')
  const isReferrer = referrer && tag.tagName === 'meta' && tag.attrs.some((attr) => attr.name === 'name' && attr.value.trim().toLowerCase() === 'referrer')
  for (const attr of tag.attrs) {
    const name = attr.name
    let value: string | undefined = attr.value
    if (name === 'integrity') {
      value = undefined // SRI hashes the origin's bytes; a rewritten resource would fail it
    } else if (URL_ATTRIBUTES.has(name) || (name === 'data' && tag.tagName === 'object')) {
      value = resolve(attr.value) ?? attr.value
    } else if (SRCSET_ATTRIBUTES.has(name)) {
      value = rewriteSrcset(attr.value, resolve)
    } else if (name === 'ping') {
      value = attr.value.split(/\s+/).filter(Boolean).map((url) => resolve(url) ?? url).join(' ')
    } else if (name === 'style') {
      value = rewriteCss(attr.value, resolve)
    } else if (name === 'content' && isRefresh) {
      value = rewriteRefresh(attr.value, resolve)
    } else if (name === 'content' && isReferrer && HIDING_POLICIES.has(attr.value.trim().toLowerCase())) {
      value = 'same-origin'
    }
    if (value === undefined) {
      changed = true
      continue
    }
    if (value !== attr.value) changed = true
    // parse5 splits the prefix off foreign attributes (`xlink:href`); the serializer writes `name` only.
    kept.push({ ...attr, name: attr.prefix !== undefined && attr.prefix !== '' ? `${attr.prefix}:${name}` : name, value })
  }
  tag.attrs = kept
  return changed
}

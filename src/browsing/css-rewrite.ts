/**
 * Rewrites the URLs of a style sheet (`url(...)` and `@import "..."`) with a scanner at the
 * level of CSS tokens (CSS Syntax 3 §4): comments and strings are skipped whole, so text
 * that only looks like `url(` inside them is left alone. The rest of the sheet is copied
 * byte for byte.
 */

export type Resolve = (reference: string) => string | undefined

const IDENT_CHAR = /[A-Za-z0-9_\-\u0080-\uffff\\]/

/** Index just past the string that opens at `start` (its quote), or the end of the text. */
function skipString (css: string, start: number): number {
  const quote = css[start]
  let i = start + 1
  while (i < css.length && css[i] !== quote && css[i] !== '\n') i += css[i] === '\\' ? 2 : 1
  return Math.min(i + 1, css.length)
}

function skipSpace (css: string, i: number): number {
  while (i < css.length && /[ \t\r\n\f]/.test(css[i])) i++
  return i
}

function quoted (url: string): string {
  return `"${url.replace(/"/g, '%22').replace(/\n/g, '%0A')}"`
}

/** Reads `url(...)` whose `(` is at `open`: the reference and the index just past `)`, or undefined. */
function readUrl (css: string, open: number): { reference: string, end: number } | undefined {
  let i = skipSpace(css, open + 1)
  if (css[i] === '"' || css[i] === "'") {
    const end = skipString(css, i)
    const reference = css.slice(i + 1, end - 1)
    i = skipSpace(css, end)
    if (css[i] !== ')' || reference.includes('\\')) return undefined
    return { reference, end: i + 1 }
  }
  const close = css.indexOf(')', i)
  if (close === -1) return undefined
  const reference = css.slice(i, close).trim()
  if (/["'(\\\s]/.test(reference)) return undefined // a bad-url token: leave it as written
  return { reference, end: close + 1 }
}

/** Returns `css` with every URL reference passed through `resolve` (undefined keeps it). */
export function rewriteCss (css: string, resolve: Resolve): string {
  let out = ''
  let copied = 0
  let i = 0
  while (i < css.length) {
    const c = css[i]
    if (c === '/' && css[i + 1] === '*') {
      const end = css.indexOf('*/', i + 2)
      i = end === -1 ? css.length : end + 2
    } else if (c === '"' || c === "'") {
      i = skipString(css, i)
    } else if ((c === 'u' || c === 'U') && css.slice(i, i + 4).toLowerCase() === 'url(' && (i === 0 || !IDENT_CHAR.test(css[i - 1]))) {
      const found = readUrl(css, i + 3)
      const rewritten = found === undefined ? undefined : resolve(found.reference)
      if (found !== undefined && rewritten !== undefined) {
        out += css.slice(copied, i) + `url(${quoted(rewritten)})`
        copied = found.end
      }
      i = found === undefined ? i + 4 : found.end
    } else if (c === '@' && css.slice(i, i + 7).toLowerCase() === '@import') {
      const at = skipSpace(css, i + 7)
      if (css[at] === '"' || css[at] === "'") {
        const end = skipString(css, at)
        const reference = css.slice(at + 1, end - 1)
        const rewritten = reference.includes('\\') ? undefined : resolve(reference)
        if (rewritten !== undefined) {
          out += css.slice(copied, at) + quoted(rewritten)
          copied = end
        }
        i = end
      } else {
        i = at // `@import url(...)` is handled as a url( token
      }
    } else {
      i++
    }
  }
  return out + css.slice(copied)
}

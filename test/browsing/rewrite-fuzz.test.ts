import { test, type TestContext } from 'node:test'
import { Readable } from 'node:stream'
import { rewriteCss } from '../../src/browsing/css-rewrite.ts'
import { createHtmlRewriter, rewriteSrcset } from '../../src/browsing/html-rewrite.ts'
import { rewriteLink, rewriteRefresh } from '../../src/browsing/header-rewrite.ts'
import { filterCookieHeader, rewriteSetCookie } from '../../src/browsing/site-cookies.ts'
import { toProxyPath } from '../../src/browsing/proxy-path.ts'

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000)
const ROUNDS = 300

/** mulberry32: a small seeded generator, so a failure can be replayed with FUZZ_SEED. */
function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const PIECES = ['url(', ')', '"', "'", '/*', '*/', '@import ', '\\', '\n', ' ', ',', ';', '<', '>', '/', '=', 'a', 'é', '\u0000',
  '<style>', '</style>', '<img src="', '<a href=', 'srcset="', ' 2x', 'http://h:1/', '//x/', '#f', '<!--', '-->', '<script>', '</script>',
  'data:', 'javascript:', '<base href="/b/">', '<meta http-equiv=refresh content="0;url=/x">', '&amp;', '&', '\ud800']

function junk (next: () => number, length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += PIECES[Math.floor(next() * PIECES.length)]
  return out
}

const base = new URL('http://127.0.0.1:23000/d/p.html')
const resolve = (reference: string): string | undefined => toProxyPath(reference, base)

test(`rewriters survive hostile input (FUZZ_SEED=${SEED})`, async (t: TestContext) => {
  const next = random(SEED)
  const started = Date.now()
  for (let round = 0; round < ROUNDS && Date.now() - started < 20_000; round++) {
    const input = junk(next, Math.floor(next() * 60))
    const context = `FUZZ_SEED=${SEED} round ${round} input ${JSON.stringify(input)}`
    t.assert.equal(rewriteCss(input, () => undefined), input, context)
    t.assert.equal(rewriteSrcset(input, () => undefined), input, context)
    t.assert.equal(typeof rewriteCss(input, resolve), 'string', context)
    t.assert.equal(typeof rewriteSrcset(input, resolve), 'string', context)
    t.assert.equal(typeof rewriteRefresh(input, resolve), 'string', context)
    t.assert.equal(typeof rewriteLink(input, resolve), 'string', context)
    const cookie = rewriteSetCookie(input, '/127.0.0.1:23000', '/d/p')
    t.assert.match(cookie, /Path=\/127\.0\.0\.1:23000/, context)
    const pair = input.split(';')[0].trim()
    if (pair !== '') t.assert.equal(filterCookieHeader(cookie.split(';')[0], '/127.0.0.1:23000'), pair, context)

    const rewriter = createHtmlRewriter({ url: base, head: '<i>h</i>' })
    const size = 1 + Math.floor(next() * 10)
    const chunks: string[] = []
    for (let i = 0; i < input.length; i += size) chunks.push(input.slice(i, i + size))
    Readable.from(chunks).pipe(rewriter)
    let out = ''
    for await (const chunk of rewriter) out += String(chunk)
    // The stream ended without an error; a tag cut off by the end of input is dropped, as HTML parsing does.
    t.assert.equal(typeof out, 'string', context)
  }
})

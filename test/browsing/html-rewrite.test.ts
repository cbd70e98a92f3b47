import { test, type TestContext } from 'node:test'
import { Readable } from 'node:stream'
import { gzipSync, brotliCompressSync } from 'node:zlib'
import { createHtmlRewriter, rewriteSrcset } from '../../src/browsing/html-rewrite.ts'
import { rewriteBody, sniffHtmlCharset, decoders } from '../../src/browsing/rewrite-body.ts'
import { toProxyPath } from '../../src/browsing/proxy-path.ts'

const url = new URL('http://127.0.0.1:23000/dir/page.html')

async function rewrite (html: string, chunkSize = 7, head?: string): Promise<string> {
  const rewriter = createHtmlRewriter({ url, head })
  const chunks: string[] = []
  for (let i = 0; i < html.length; i += chunkSize) chunks.push(html.slice(i, i + chunkSize))
  Readable.from(chunks).pipe(rewriter)
  let out = ''
  for await (const chunk of rewriter) out += String(chunk)
  return out
}

async function text (stream: Readable): Promise<string> {
  const parts: Buffer[] = []
  for await (const chunk of stream) parts.push(Buffer.from(chunk))
  return Buffer.concat(parts).toString('utf8')
}

test('every fetched or navigated URL becomes a proxy path, split across any chunk boundary', async (t: TestContext) => {
  const html = [
    '<!doctype html><html><head><meta charset="utf-8">',
    '<link rel="stylesheet" href="/css/site.css" integrity="sha384-abc" crossorigin>',
    '<script src="http://127.0.0.2:23001/lib.js" integrity="sha256-x"></script>',
    '<meta http-equiv="refresh" content="30; url=/later">',
    '<meta http-equiv="Content-Security-Policy" content="default-src \'self\'">',
    '<style>body{background:url(/img/bg.png)} a > b {color:red}</style>',
    '</head><body style="background-image: url(\'tile.png\')">',
    '<a href="/about.html" ping="/ping1 http://127.0.0.2:23001/ping2">about</a>',
    '<a href="#top">top</a><a href="mailto:x@y.z">mail</a><a href="javascript:void(0)">js</a>',
    '<img src="img/a.png" srcset="img/a.png 1x, /img/a@2x.png 2x" alt="a &amp; b">',
    '<picture><source srcset="//127.0.0.2:23001/wide.webp 800w"></picture>',
    '<form action="/search" method="get"><button formaction="https://127.0.0.1:23443/alt">go</button></form>',
    '<video poster="/poster.jpg"><source src="/v.mp4"></video><object data="/o.svg"></object>',
    '<svg><use xlink:href="/sprite.svg#i"></use></svg>',
    '<script>fetch("/api/data.json")</script><textarea><a href="/not-a-link"></textarea>',
    '<!-- <img src="/commented.png"> --></body></html>'
  ].join('\n')
  for (const size of [1, 7, 4096]) {
    const out = await rewrite(html, size)
    t.assert.ok(out.includes('<link rel="stylesheet" href="/127.0.0.1:23000/css/site.css" crossorigin="">'), out)
    t.assert.ok(!out.includes('integrity'), out)
    t.assert.ok(out.includes('<script src="/127.0.0.2:23001/lib.js"></script>'), out)
    t.assert.ok(out.includes('content="30; url=/127.0.0.1:23000/later"'), out)
    t.assert.ok(!out.includes('Content-Security-Policy'), out)
    t.assert.ok(out.includes('<style>body{background:url("/127.0.0.1:23000/img/bg.png")} a > b {color:red}</style>'), out)
    t.assert.ok(out.includes('style="background-image: url(&quot;/127.0.0.1:23000/dir/tile.png&quot;)"'), out)
    t.assert.ok(out.includes('href="/127.0.0.1:23000/about.html" ping="/127.0.0.1:23000/ping1 /127.0.0.2:23001/ping2"'), out)
    t.assert.ok(out.includes('<a href="#top">top</a><a href="mailto:x@y.z">mail</a><a href="javascript:void(0)">js</a>'), out)
    t.assert.ok(out.includes('src="/127.0.0.1:23000/dir/img/a.png" srcset="/127.0.0.1:23000/dir/img/a.png 1x, /127.0.0.1:23000/img/a@2x.png 2x" alt="a &amp; b"'), out)
    t.assert.ok(out.includes('srcset="/127.0.0.2:23001/wide.webp 800w"'), out)
    t.assert.ok(out.includes('action="/127.0.0.1:23000/search"'), out)
    t.assert.ok(out.includes('formaction="/https://127.0.0.1:23443/alt"'), out)
    t.assert.ok(out.includes('poster="/127.0.0.1:23000/poster.jpg"') && out.includes('src="/127.0.0.1:23000/v.mp4"') && out.includes('data="/127.0.0.1:23000/o.svg"'), out)
    t.assert.ok(out.includes('xlink:href="/127.0.0.1:23000/sprite.svg#i"'), out)
    t.assert.ok(out.includes('<script>fetch("/api/data.json")</script><textarea><a href="/not-a-link"></textarea>'), out)
    t.assert.ok(out.includes('<!-- <img src="/commented.png"> -->'))
  }
})

test('untouched markup is copied byte for byte', async (t: TestContext) => {
  const html = '<!DOCTYPE html>\n<P CLASS=x>Caf\u00e9 &eacute; <b>bold</b>\n<IMG ALT=\'q\'>'
  t.assert.equal(await rewrite(html), html)
})

test('<base href> moves into the proxy and becomes the base of later URLs', async (t: TestContext) => {
  const out = await rewrite('<head><base href="http://127.0.0.2:23001/sub/"><base href="/ignored/"></head><img src="x.png">')
  t.assert.ok(out.includes('<base href="/127.0.0.2:23001/sub/">'), out)
  t.assert.ok(out.includes('<img src="/127.0.0.2:23001/sub/x.png">'), out)
})

test('markup for the head goes first in <head>, or before the first element', async (t: TestContext) => {
  t.assert.equal(await rewrite('<!doctype html><html><head><title>t</title></head></html>', 3, '<i>X</i>'),
    '<!doctype html><html><head><i>X</i><title>t</title></head></html>')
  t.assert.equal(await rewrite('<p>hi</p>', 3, '<i>X</i>'), '<i>X</i><p>hi</p>')
})

test('a document that ends inside <style> keeps its rewritten sheet', async (t: TestContext) => {
  t.assert.equal(await rewrite('<style>a{background:url(/a.png)}', 5), '<style>a{background:url("/127.0.0.1:23000/a.png")}')
})

test('a referrer policy that would hide the page from the proxy becomes same-origin', async (t: TestContext) => {
  t.assert.equal(await rewrite('<meta name="referrer" content="no-referrer"><meta name=referrer content=origin>'),
    '<meta name="referrer" content="same-origin"><meta name="referrer" content="same-origin">')
  const kept = '<meta name="referrer" content="strict-origin-when-cross-origin">'
  t.assert.equal(await rewrite(kept), kept)
})

test('srcset candidates with commas inside URLs and descriptors', (t: TestContext) => {
  const resolve = (r: string): string | undefined => toProxyPath(r, url)
  t.assert.equal(rewriteSrcset('a.png 1x,b.png 2x', resolve), '/127.0.0.1:23000/dir/a.png 1x,/127.0.0.1:23000/dir/b.png 2x')
  t.assert.equal(rewriteSrcset('data:image/png;base64,AA= 1x, /b,c.png 2x', resolve), 'data:image/png;base64,AA= 1x, /127.0.0.1:23000/b,c.png 2x')
  t.assert.equal(rewriteSrcset('  ', resolve), '  ')
})

test('compressed bodies in any charset come out as rewritten UTF-8', async (t: TestContext) => {
  const latin1 = Buffer.from('<html><head><meta charset="iso-8859-1"></head><a href="/caf\u00e9">caf\u00e9</a>' + ' '.repeat(1100), 'latin1')
  t.assert.equal(sniffHtmlCharset(latin1), 'iso-8859-1')
  const out = await text(rewriteBody(gzipSync(latin1), { kind: 'html', url, contentEncoding: 'gzip', charset: undefined, maxCssChars: 1000 }) as Readable)
  t.assert.ok(out.includes('<a href="/127.0.0.1:23000/caf%C3%A9">caf\u00e9</a>'), out)
  const css = await text(rewriteBody(brotliCompressSync(Buffer.from('a{b:url(/x.png)}')), { kind: 'css', url, contentEncoding: 'br', charset: 'utf-8', maxCssChars: 1000 }) as Readable)
  t.assert.equal(css, 'a{b:url("/127.0.0.1:23000/x.png")}')
  const big = 'a{b:url(/x.png)}'.repeat(100)
  t.assert.equal(await text(rewriteBody(Buffer.from(big), { kind: 'css', url, contentEncoding: undefined, charset: undefined, maxCssChars: 100 }) as Readable), big)
  t.assert.equal(decoders('zstd'), undefined)
  t.assert.equal(decoders('gzip, br')?.length, 2)
})

test('a corrupt gzip body ends the stream with an error instead of throwing', async (t: TestContext) => {
  const stream = rewriteBody(Buffer.from('not gzip at all'), { kind: 'html', url, contentEncoding: 'gzip', charset: 'utf-8', maxCssChars: 10 }) as Readable
  await t.assert.rejects(text(stream))
})

import { test, type TestContext } from 'node:test'
import { rewriteCss } from '../../src/browsing/css-rewrite.ts'
import { toProxyPath } from '../../src/browsing/proxy-path.ts'

const base = new URL('http://127.0.0.1:23000/css/site.css')
const resolve = (reference: string): string | undefined => toProxyPath(reference, base)

test('url() in every quoting and @import are rewritten', (t: TestContext) => {
  const css = [
    "@import 'reset.css';",
    '@import url("/print.css") print;',
    'body { background: url(/img/bg.png) no-repeat; }',
    '.a { background-image: URL( "../img/a.png" ); }',
    ".b { cursor: url('http://127.0.0.2:23001/c.cur'), auto; }",
    '@font-face { font-family: T; src: url(fonts/t.woff2) format("woff2"), local(Arial); }'
  ].join('\n')
  const out = rewriteCss(css, resolve)
  t.assert.equal(out, [
    '@import "/127.0.0.1:23000/css/reset.css";',
    '@import url("/127.0.0.1:23000/print.css") print;',
    'body { background: url("/127.0.0.1:23000/img/bg.png") no-repeat; }',
    '.a { background-image: url("/127.0.0.1:23000/img/a.png"); }',
    '.b { cursor: url("/127.0.0.2:23001/c.cur"), auto; }',
    '@font-face { font-family: T; src: url("/127.0.0.1:23000/css/fonts/t.woff2") format("woff2"), local(Arial); }'
  ].join('\n'))
})

test('comments, strings, data: URLs and look-alikes are left alone', (t: TestContext) => {
  const css = [
    '/* url(/commented.png) */',
    '.q::before { content: "url(/in-string.png)"; }',
    '.d { background: url(data:image/png;base64,iVBOR) }',
    '.e { background: myurl(/x.png) }',
    '.f { background: url(#svg-filter) }',
    '.g { background: url(/bad url.png) }',
    '.h { background: url(/unterminated.png'
  ].join('\n')
  t.assert.equal(rewriteCss(css, resolve), css)
})

test('quotes in a rewritten URL cannot break out of the string', (t: TestContext) => {
  const out = rewriteCss('.x{background:url(\'/a"b.png\')}', resolve)
  t.assert.equal(out, '.x{background:url("/127.0.0.1:23000/a%22b.png")}')
})

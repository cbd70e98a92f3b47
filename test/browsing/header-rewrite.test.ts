import { test, type TestContext } from 'node:test'
import { rewriteLink, rewriteRefresh, rewriteUrlField } from '../../src/browsing/header-rewrite.ts'
import { toProxyPath } from '../../src/browsing/proxy-path.ts'

const base = new URL('https://site.example/dir/page')
const resolve = (reference: string): string | undefined => toProxyPath(reference, base)

test('Location and Content-Location become proxy paths', (t: TestContext) => {
  t.assert.equal(rewriteUrlField('/moved', resolve), '/https://site.example/moved')
  t.assert.equal(rewriteUrlField('next', resolve), '/https://site.example/dir/next')
  t.assert.equal(rewriteUrlField('http://other.example/x?y#z', resolve), '/other.example/x?y#z')
  t.assert.equal(rewriteUrlField('mailto:a@b.c', resolve), 'mailto:a@b.c')
})

test('Refresh keeps its delay and syntax', (t: TestContext) => {
  t.assert.equal(rewriteRefresh('5; url=/next', resolve), '5; url=/https://site.example/next')
  t.assert.equal(rewriteRefresh("0;URL='http://a.example/'", resolve), "0;URL='/a.example/'")
  t.assert.equal(rewriteRefresh('3, /x', resolve), '3, /https://site.example/x')
  t.assert.equal(rewriteRefresh('3 /x', resolve), '3 /https://site.example/x')
  t.assert.equal(rewriteRefresh('10', resolve), '10')
  t.assert.equal(rewriteRefresh('soon', resolve), 'soon')
})

test('each Link target is rewritten', (t: TestContext) => {
  t.assert.equal(rewriteLink('</style.css>; rel=preload; as=style, <https://cdn.example/f.woff2>; rel=preload',
    resolve), '</https://site.example/style.css>; rel=preload; as=style, </https://cdn.example/f.woff2>; rel=preload')
})

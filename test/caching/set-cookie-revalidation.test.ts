import { test } from 'node:test'
import { startOrigin } from '../helpers/origin.ts'
import { testApp } from '../helpers/app.ts'

function origin304WithCookie (): ReturnType<typeof startOrigin> {
  let n = 0
  return startOrigin({
    '/r': (req, res) => {
      n++
      if (req.headers['if-none-match'] === '"a"') {
        res.writeHead(304, { etag: '"a"', 'cache-control': 'max-age=0', 'set-cookie': `sid=user${n}` })
        res.end()
        return
      }
      res.writeHead(200, { etag: '"a"', 'cache-control': 'max-age=0' })
      res.end('body')
    }
  })
}

for (const cacheSetCookie of ['false', 'true']) {
  test(`a Set-Cookie on a 304 reaches only the client whose request caused it (CACHE_SET_COOKIE=${cacheSetCookie})`, async (t) => {
    const origin = await origin304WithCookie()
    t.after(() => origin.close())
    const app = await testApp(t, { CACHE_SET_COOKIE: cacheSetCookie })
    const url = `/${origin.host}/r`
    await app.inject(url)
    const revalidated = await app.inject(url)
    t.assert.equal(revalidated.body, 'body')
    t.assert.match(String(revalidated.headers['cache-status']), /fwd-status=304/)
    t.assert.deepEqual(revalidated.headers['set-cookie'], ['sid=user2'], 'the revalidating client gets its cookie, once')
    const later = await app.inject({ url, headers: { 'cache-control': 'max-stale=60' } })
    t.assert.match(String(later.headers['cache-status']), /hit/)
    t.assert.equal(later.headers['set-cookie'], undefined, 'nobody else ever receives it')
  })
}

test('a stale-while-revalidate refresh carrying Set-Cookie hands the cookie to nobody', async (t) => {
  let n = 0
  const origin = await startOrigin({
    '/s': (req, res) => {
      n++
      const cookie = n > 1 ? { 'set-cookie': `sid=refresh${n}` } : {}
      if (req.headers['if-none-match'] === '"a"' && n === 2) {
        res.writeHead(304, { etag: '"a"', 'cache-control': 'max-age=0, stale-while-revalidate=60', ...cookie })
        res.end()
        return
      }
      res.writeHead(200, { etag: '"a"', 'cache-control': 'max-age=0, stale-while-revalidate=60', ...cookie })
      res.end(`body${n}`)
    }
  })
  t.after(() => origin.close())
  const app = await testApp(t, { CACHE_SET_COOKIE: 'true' })
  const url = `/${origin.host}/s`
  await app.inject(url)
  for (let i = 0; i < 6; i++) {
    const res = await app.inject(url)
    t.assert.equal(res.headers['set-cookie'], undefined, `request ${i}`)
    await new Promise((resolve) => setTimeout(resolve, 50)) // let the background refresh land
  }
  t.assert.equal(n >= 3, true, 'background refreshes (a 304 and a 200, both with Set-Cookie) happened')
})

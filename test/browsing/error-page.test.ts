import { test } from 'node:test'
import net, { type AddressInfo } from 'node:net'
import { errorHint, errorPage, escapeHtml, prefersHtml } from '../../src/error-page.ts'
import { testApp } from '../helpers/app.ts'
import { get, listen, send } from '../helpers/raw-http.ts'

const CHROME = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7'
const FIREFOX = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'

test('prefersHtml follows Accept q-values; ties, */* and no Accept mean JSON', (t) => {
  const cases: Array<[string | string[] | undefined, boolean]> = [
    [CHROME, true],
    [FIREFOX, true],
    ['text/html', true],
    ['text/*', true],
    ['text/html, application/json;q=0.9', true],
    ['application/json;q=0.5, text/html;q=0.9', true],
    [['application/xml;q=0.1', 'text/html'], true],
    [undefined, false],
    ['', false],
    ['*/*', false], // curl
    ['application/json', false],
    ['application/json, text/html', false],
    ['text/html, application/json', true], // a tie in q: the client's order decides
    ['text/html;q=0.5, application/json', false],
    ['text/html;q=0', false],
    ['image/png', false],
    ['garbage;;;==,', false]
  ]
  for (const [accept, expected] of cases) t.assert.equal(prefersHtml(accept), expected, JSON.stringify(accept))
})

test('the HTML page says what happened and what to try, escaped', (t) => {
  const hostile = '<script>alert("x")</script>&'
  const page = errorPage(502, { error: 'Bad Gateway', message: `upstream ${hostile} could not be reached`, code: 'CPX_UPSTREAM_UNREACHABLE', upstream: hostile })
  t.assert.match(page, /^<!doctype html>/)
  t.assert.match(page, /<title>502 Bad Gateway/)
  t.assert.match(page, /could not be reached/)
  t.assert.match(page, /Check the host name/)
  t.assert.equal(page.includes('<script>'), false)
  t.assert.match(page, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;&amp;/)
  t.assert.equal(escapeHtml('<a href=\'x\'>&</a>'), '&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;')

  // 403s name the rule that refused, with its own advice.
  t.assert.match(errorHint(403, { error: 'Forbidden', message: '', code: 'CPX_UPSTREAM_FORBIDDEN', rule: 'port' }), /UPSTREAM_PORTS/)
  t.assert.match(errorHint(403, { error: 'Forbidden', message: '', code: 'CPX_UPSTREAM_FORBIDDEN', rule: 'allow-list' }), /UPSTREAM_ALLOW/)
  t.assert.match(errorHint(403, { error: 'Forbidden', message: '', code: 'CPX_UPSTREAM_FORBIDDEN', rule: 'loopback' }), /ALLOW_PRIVATE_UPSTREAMS/)
  t.assert.match(errorHint(403, { error: 'Forbidden', message: '', code: 'CPX_CLIENT_FORBIDDEN' }), /ALLOW_CLIENTS/)
  t.assert.match(errorHint(504, { error: 'Gateway Timeout', message: '' }), /UPSTREAM_TIMEOUT_MS/)
  t.assert.match(errorHint(599, { error: 'Error', message: '' }), /inside the proxy/)
  t.assert.match(errorPage(403, { error: 'Forbidden', message: 'm', rule: 'private-rfc1918' }), /<dt>Rule<\/dt><dd><code>private-rfc1918<\/code>/)
})

async function closedPort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

test('browsers get HTML error pages from the proxy; other clients get the same JSON as before', async (t) => {
  const port = await closedPort()
  const app = await testApp(t)
  const strict = await testApp(t, { ALLOW_PRIVATE_UPSTREAMS: 'false', UPSTREAM_PORTS: '80,443' })
  const cases: Array<{ app: typeof app, url: string, status: number, text: RegExp, json: Record<string, unknown> }> = [
    { app, url: `/127.0.0.1:${port}/x`, status: 502, text: /ECONNREFUSED[\s\S]*Check the host name/, json: { error: 'Bad Gateway', code: 'CPX_UPSTREAM_UNREACHABLE', upstream: `127.0.0.1:${port}` } },
    { app, url: '/bad_host!/x', status: 400, text: /malformed upstream host/, json: { error: 'Bad Request', code: 'CPX_BAD_UPSTREAM_URL' } },
    { app, url: '/favicon.ico', status: 404, text: /no favicon here[\s\S]*no page at this address/, json: { error: 'Not Found', message: 'no favicon here' } },
    { app: strict, url: '/127.0.0.1/x', status: 403, text: /forbidden range \(loopback\)[\s\S]*ALLOW_PRIVATE_UPSTREAMS[\s\S]*<code>loopback<\/code>/, json: { error: 'Forbidden', code: 'CPX_UPSTREAM_FORBIDDEN', rule: 'loopback' } },
    { app: strict, url: '/example.com:8080/', status: 403, text: /port 8080 is not allowed[\s\S]*UPSTREAM_PORTS/, json: { error: 'Forbidden', rule: 'port' } }
  ]
  for (const c of cases) {
    const html = await c.app.inject({ url: c.url, headers: { accept: CHROME } })
    const json = await c.app.inject({ url: c.url, headers: { accept: '*/*' } })
    t.assert.equal(html.statusCode, c.status, c.url)
    t.assert.match(html.headers['content-type'] as string, /^text\/html; charset=utf-8/, c.url)
    t.assert.match(html.body, c.text, c.url)
    t.assert.match(html.headers.vary as string, /accept/i)
    t.assert.equal(json.statusCode, c.status, c.url)
    t.assert.match(json.headers['content-type'] as string, /^application\/json/, c.url)
    const body = json.json()
    t.assert.equal(typeof body.message, 'string')
    for (const [key, value] of Object.entries(c.json)) t.assert.equal(body[key], value, `${c.url} ${key}`)
  }
})

test('auth (401, 407) and rate limit (429) errors are HTML pages for browsers, with their headers', async (t) => {
  const app = await testApp(t, { PROXY_AUTH: 'alice:pw', RATE_LIMIT_PER_MINUTE: '3' })
  const path = await app.inject({ url: '/example.com/', headers: { accept: CHROME } })
  t.assert.equal(path.statusCode, 401)
  t.assert.match(path.headers['www-authenticate'] as string, /^Basic realm=/)
  t.assert.match(path.body, /<h1>401 Unauthorized<\/h1>[\s\S]*user name and password/)
  const forward = await send(await listen(app), get('http://example.com/', [['Accept', CHROME]]))
  t.assert.equal(forward.status, 407)
  t.assert.match(forward.headers['proxy-authenticate'], /^Basic realm=/)
  t.assert.match(forward.text, /<h1>407 Proxy Authentication Required<\/h1>/)
  t.assert.equal((await app.inject({ url: '/example.com/' })).json().error, 'Unauthorized')
  const limited = await app.inject({ url: '/example.com/', headers: { accept: CHROME } })
  t.assert.equal(limited.statusCode, 429)
  t.assert.match(limited.headers['content-type'] as string, /^text\/html/)
  t.assert.match(limited.body, /<h1>429 Too Many Requests<\/h1>[\s\S]*RATE_LIMIT_PER_MINUTE/)
  t.assert.equal(typeof limited.headers['retry-after'], 'string')
  const json = await app.inject({ url: '/example.com/' })
  t.assert.equal(json.statusCode, 429)
  t.assert.match(json.json().message, /Rate limit exceeded/)
})

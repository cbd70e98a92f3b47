import { test } from 'node:test'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { tempDir, testApp } from '../helpers/app.ts'

test('https upstreams have their certificate verified', async (t) => {
  const dir = tempDir(t)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  let hits = 0
  const server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => {
    hits++
    res.end('secret')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  const port = (server.address() as AddressInfo).port

  const app = await testApp(t)
  const res = await app.inject(`/https://127.0.0.1:${port}/`)
  t.assert.equal(res.statusCode, 502)
  t.assert.match(res.json().message, /SELF_SIGNED|CERT|certificate/i)
  t.assert.equal(hits, 0)
})

import { test } from 'node:test'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { testApp } from '../helpers/app.ts'
import { drainConnections } from '../../src/drain.ts'

// src/drain.ts: how a stopping worker ends its keep-alive connections (issue #7 item 8).
// Keep-alive timeouts are at least 2 s here: Node's http.Agent drops a socket at once
// when the server announces `Keep-Alive: timeout=0` or `1`.

interface Answer { status: number, connection: string | undefined, socket: import('node:net').Socket }

function request (port: number, agent: http.Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, socket: req.socket as import('node:net').Socket }))
    })
    req.on('error', reject)
  })
}

async function listening (t: { after: (fn: () => Promise<void> | void) => void }, env: Record<string, string> = {}): Promise<{ server: http.Server, port: number, agent: http.Agent }> {
  const app = await testApp(t, env)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => agent.destroy())
  return { server: app.server, port: (app.server.address() as AddressInfo).port, agent }
}

test('draining: the next response on a kept-alive socket says Connection: close, then the socket ends; new connections are refused', { timeout: 15_000 }, async (t) => {
  const { server, port, agent } = await listening(t)
  const first = await request(port, agent)
  t.assert.equal(first.status, 200)
  t.assert.equal(first.connection, 'keep-alive')

  const drained = drainConnections(server, 5000)
  const second = await request(port, agent) // the same socket, reused
  t.assert.equal(second.socket, first.socket, 'the kept-alive socket was reused, not reset')
  t.assert.equal(second.status, 200)
  t.assert.equal(second.connection, 'close')
  t.assert.equal(await drained, true, 'all connections ended before the drain time')
  await t.assert.rejects(request(port, new http.Agent()), /ECONNREFUSED/)
})

test('draining: an idle kept-alive socket is not destroyed at once but at its keep-alive timeout', { timeout: 15_000 }, async (t) => {
  const { server, port, agent } = await listening(t, { KEEP_ALIVE_TIMEOUT_MS: '2000' })
  const first = await request(port, agent)
  t.assert.equal(first.connection, 'keep-alive')
  const closed = new Promise<number>((resolve) => first.socket.once('close', () => resolve(Date.now())))
  const started = Date.now()
  const drained = drainConnections(server, 5000)
  // A client may be sending on the idle socket right now: it must still be answered.
  await sleep(300)
  t.assert.equal(first.socket.destroyed, false, 'still open 300 ms into the drain')
  const second = await request(port, agent)
  t.assert.equal(second.socket, first.socket)
  t.assert.equal(second.connection, 'close')
  t.assert.equal(await drained, true)
  t.assert.equal((await closed) - started >= 300, true)
})

test('draining: a socket left idle ends by the keep-alive timeout; the drain resolves then', { timeout: 15_000 }, async (t) => {
  const { server, port, agent } = await listening(t, { KEEP_ALIVE_TIMEOUT_MS: '2000' })
  await request(port, agent)
  const started = Date.now()
  t.assert.equal(await drainConnections(server, 5000), true)
  const ms = Date.now() - started
  t.assert.equal(ms >= 1800 && ms < 4000, true, `drained in ${ms} ms`)
})

test('draining: gives up (false) after its time when a connection stays busy', { timeout: 15_000 }, async (t) => {
  const { server, port } = await listening(t)
  // A request whose headers never finish keeps its connection busy.
  const socket = (await import('node:net')).connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n')
  await sleep(50)
  const started = Date.now()
  t.assert.equal(await drainConnections(server, 400), false)
  t.assert.equal(Date.now() - started >= 350, true)
  socket.destroy() // before the app closes: closing waits for every connection
})

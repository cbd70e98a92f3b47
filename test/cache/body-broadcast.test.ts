import { test } from 'node:test'
import { PassThrough } from 'node:stream'
import { BodyBroadcast } from '../../src/cache/flight.ts'

test('clients get the last byte and the end only once the body is stored', async (t) => {
  const source = new PassThrough()
  let store!: () => void
  const stored = new Promise<void>((resolve) => { store = resolve })
  let whole: Buffer | undefined
  const body = new BodyBroadcast(source, 1000, (b) => { whole = b; return stored })
  const client = body.subscribe()!
  const received: Buffer[] = []
  let ended = false
  client.on('data', (chunk: Buffer) => received.push(chunk))
  client.on('end', () => { ended = true })
  body.start()
  source.write('hello ')
  source.end('world')
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.assert.equal(whole?.toString(), 'hello world')
  t.assert.equal(Buffer.concat(received).toString(), 'hello worl', 'all but the last byte while the store write is pending')
  t.assert.equal(ended, false)
  const late = body.subscribe()!
  const lateText = (async () => { let text = ''; for await (const chunk of late) text += String(chunk); return text })()
  store()
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.assert.equal(Buffer.concat(received).toString(), 'hello world')
  t.assert.equal(ended, true)
  t.assert.equal(await lateText, 'hello world', 'a waiter that joins after the end gets it all at once')
})

test('a store that never answers holds the clients at most holdMs', async (t) => {
  const source = new PassThrough()
  const body = new BodyBroadcast(source, 1000, () => new Promise<void>(() => {}), 50)
  const keepAlive = setTimeout(() => {}, 2000) // the hold timer is unref'd: keep the loop alive meanwhile
  t.after(() => clearTimeout(keepAlive))
  const client = body.subscribe()!
  body.start()
  source.end('abc')
  let text = ''
  for await (const chunk of client) text += String(chunk)
  t.assert.equal(text, 'abc')
})

/**
 * Audio in a real browser through path-prefix mode: Chromium asks for `Range: bytes=0-`; the
 * proxy fetches the whole file once, stores it and answers every range (play, seek) from it.
 */
import { test, type TestContext } from 'node:test'
import type { Page } from 'playwright-core'
import { launchChromium, siteBehindProxy, SKIP_WITHOUT_CHROMIUM } from '../helpers/browser.ts'

const SKIP = SKIP_WITHOUT_CHROMIUM

/** A mono 16-bit PCM WAV of `seconds` of a 440 Hz tone. */
function wav (seconds: number, rate = 8000): Buffer {
  const samples = seconds * rate
  const out = Buffer.alloc(44 + samples * 2)
  out.write('RIFF', 0)
  out.writeUInt32LE(36 + samples * 2, 4)
  out.write('WAVEfmt ', 8)
  out.writeUInt32LE(16, 16)
  out.writeUInt16LE(1, 20) // PCM
  out.writeUInt16LE(1, 22) // mono
  out.writeUInt32LE(rate, 24)
  out.writeUInt32LE(rate * 2, 28)
  out.writeUInt16LE(2, 32)
  out.writeUInt16LE(16, 34)
  out.write('data', 36)
  out.writeUInt32LE(samples * 2, 40)
  for (let i = 0; i < samples; i++) out.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2)
  return out
}

// A string, not a function: tsx would wrap named inner functions in a helper the page lacks.
const PLAY_AND_SEEK = `(async () => {
  const audio = document.getElementById('tone')
  await audio.play()
  while (audio.currentTime <= 0.2) await new Promise((resolve) => setTimeout(resolve, 20))
  const played = audio.currentTime
  await new Promise((resolve) => { audio.addEventListener('seeked', resolve); audio.currentTime = 2.5 })
  return { played, seekedTo: audio.currentTime, duration: audio.duration }
})()`

async function playAndSeek (page: Page): Promise<{ played: number, seekedTo: number, duration: number }> {
  return await page.evaluate(PLAY_AND_SEEK)
}

test('audio plays and seeks through the proxy; the file is fetched from the origin once, the second play is a hit', { timeout: 60_000, skip: SKIP }, async (t: TestContext) => {
  const tone = wav(4)
  const { site, proxy } = await siteBehindProxy(t, {
    '/media/player.html': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'max-age=600' })
      res.end('<!doctype html><html><body><audio id="tone" src="/media/tone.wav" preload="auto" controls></audio></body></html>')
    },
    '/media/tone.wav': (req, res) => {
      // A real origin with ranges: the proxy must ask for the whole file anyway.
      const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''))
      const headers = { 'content-type': 'audio/wav', 'cache-control': 'max-age=600', 'accept-ranges': 'bytes', etag: '"tone"' }
      if (range === null) {
        res.writeHead(200, { ...headers, 'content-length': tone.length })
        res.end(tone)
        return
      }
      const start = Number(range[1])
      const end = range[2] === '' ? tone.length - 1 : Math.min(Number(range[2]), tone.length - 1)
      res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${tone.length}`, 'content-length': end - start + 1 })
      res.end(tone.subarray(start, end + 1))
    }
  })
  const browser = await launchChromium(t, ['--autoplay-policy=no-user-gesture-required'])

  const statuses: number[] = []
  for (let visit = 0; visit < 2; visit++) {
    const context = await browser.newContext()
    const page = await context.newPage()
    page.on('response', (response) => { if (response.url().endsWith('/media/tone.wav')) statuses.push(response.status()) })
    await page.goto(`${proxy}/${site.a.host}/media/player.html`, { waitUntil: 'load' })
    const result = await playAndSeek(page)
    t.assert.ok(result.played > 0.2, `visit ${visit}: it played (${result.played} s)`)
    t.assert.ok(Math.abs(result.seekedTo - 2.5) < 0.1, `visit ${visit}: it seeked to ${result.seekedTo} s`)
    t.assert.ok(Math.abs(result.duration - 4) < 0.1, `visit ${visit}: duration ${result.duration} s`)
    await context.close()
  }
  const toOrigin = site.a.requests.filter((r) => r.path === '/media/tone.wav')
  t.assert.equal(toOrigin.length, 1, 'the file was fetched from the origin once, for both visits')
  t.assert.equal(toOrigin[0].headers.range, undefined, 'as a whole')
  t.assert.ok(statuses.length >= 2 && statuses.every((s) => s === 206 || s === 200), `browser saw ${statuses.join(', ')}`)
  t.assert.ok(statuses.includes(206), 'ranges were answered 206')
})

import { PassThrough, type Readable } from 'node:stream'

/**
 * The bytes `start`..`end` (inclusive) of a body while it streams, for answering a Range
 * request from a whole response (RFC 9110 §14). `enough` is called once the slice is complete
 * or its reader went away: the caller decides whether the rest is still read (to store it)
 * or dropped.
 */
export function sliceStream (source: Readable, start: number, end: number, enough: () => void): Readable {
  const out = new PassThrough()
  let position = 0
  let done = false
  const finish = (): void => {
    if (done) return
    done = true
    source.off('data', onData)
    enough()
  }
  function onData (chunk: Buffer): void {
    const from = Math.max(start - position, 0)
    const to = Math.min(end + 1 - position, chunk.length)
    position += chunk.length
    if (to > from && !out.write(chunk.subarray(from, to))) {
      source.pause()
      out.once('drain', () => { if (!done) source.resume() })
    }
    if (position > end) {
      out.end()
      finish()
    }
  }
  source.on('data', onData)
  source.once('end', () => { out.end(); finish() })
  source.once('error', (error) => { out.destroy(error); finish() })
  out.once('close', finish)
  return out
}

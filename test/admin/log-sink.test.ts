import { test } from 'node:test'
import { spawn } from 'node:child_process'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { turnBatchedSink } from '../../src/log-sink.ts'
import { ROOT } from '../helpers/process.ts'

// The log lines of one event-loop turn go out in one write (src/log-sink.ts), in order; the
// process's stdout sink writes what is queued when the process exits and survives a closed stdout.

test('lines of one turn are written together, in order, once the turn ends', async (t) => {
  const writes: string[] = []
  const sink = turnBatchedSink((chunk) => { writes.push(chunk) })
  sink.write('a\n')
  sink.write('b\n')
  sink.write('c\n')
  t.assert.deepEqual(writes, [], 'nothing is written within the turn')
  await nextTurn()
  t.assert.deepEqual(writes, ['a\nb\nc\n'])
  sink.write('d\n')
  await nextTurn()
  t.assert.deepEqual(writes, ['a\nb\nc\n', 'd\n'], 'a later turn is a write of its own')
  sink.write('e\n')
  let called = false
  sink.flush(() => { called = true })
  t.assert.deepEqual(writes.at(-1), 'e\n', 'flush hands on at once')
  t.assert.equal(called, true, 'and calls back')
  await nextTurn()
  t.assert.equal(writes.length, 3, 'and leaves nothing for the turn\'s end')
})

test('flushSync hands on the queue at once', (t) => {
  const writes: string[] = []
  const sink = turnBatchedSink((chunk) => { writes.push(chunk) })
  sink.write('fatal\n')
  sink.flushSync()
  t.assert.deepEqual(writes, ['fatal\n'])
})

/** Runs a script that logs through the app's stdout sink; its exit code and stdout. */
async function child (script: string, closeStdout = false): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    `import { stdoutSink } from './src/log-sink.ts'\nconst sink = stdoutSink()\n${script}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  if (closeStdout) proc.stdout.destroy()
  else proc.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
  const code = await new Promise<number | null>((resolve) => proc.on('close', resolve))
  clearTimeout(killer)
  return { code, stdout, stderr }
}

test('what is queued when the process exits is written, more than a pipe holds', { timeout: 20_000 }, async (t) => {
  // 2,000 lines of 200 bytes: 400 kB, over a pipe's 64 KiB, queued in one turn, then exit.
  const { code, stdout, stderr } = await child('for (let i = 0; i < 2000; i++) sink.write(String(i).padStart(199, "-") + "\\n"); process.exit(3)')
  t.assert.equal(code, 3, stderr)
  const lines = stdout.split('\n')
  t.assert.equal(lines.length, 2001)
  t.assert.equal(lines[1999], '1999'.padStart(199, '-'))
})

test('the app logs through it: the lines of a turn reach fd 1 in one write at its end', { timeout: 20_000 }, async (t) => {
  const { code, stderr } = await child(`
    const fs = (await import('node:fs')).default
    const writes = []
    for (const name of ['write', 'writeSync']) {
      const original = fs[name]
      fs[name] = function (fd, data, ...rest) { if (fd === 1) writes.push(String(data)); return original.call(this, fd, data, ...rest) }
    }
    const { buildApp } = await import('./src/app.ts')
    const { loadConfig } = await import('./config/index.ts')
    const app = await buildApp(loadConfig({ LOG_LEVEL: 'info', CACHE_STORE: 'memory://' }))
    await new Promise((resolve) => setImmediate(resolve))
    writes.length = 0
    for (const n of [1, 2, 3]) app.log.info({ n }, 'marker')
    const within = writes.length
    setImmediate(() => { process.stderr.write('RESULT ' + JSON.stringify({ within, writes }) + '\\n'); process.exit(0) })`)
  t.assert.equal(code, 0, stderr)
  const result = JSON.parse((stderr.split('\n').find((line) => line.startsWith('RESULT ')) ?? 'RESULT {}').slice(7)) as { within: number, writes: string[] }
  t.assert.equal(result.within, 0, 'nothing written within the turn')
  t.assert.equal(result.writes.length, 1, 'one write')
  t.assert.deepEqual(result.writes[0].split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { n: number }).n), [1, 2, 3])
})

test('a closed stdout ends logging, not the process', { timeout: 20_000 }, async (t) => {
  const { code, stderr } = await child(`
    for (let i = 0; i < 50; i++) { sink.write('x'.repeat(4096) + '\\n'); await new Promise((resolve) => setTimeout(resolve, 5)) }
    process.exitCode = 7`, true)
  t.assert.equal(code, 7, stderr)
})

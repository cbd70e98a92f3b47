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
  sink.flush()
  t.assert.deepEqual(writes.at(-1), 'e\n', 'flush writes at once')
  await nextTurn()
  t.assert.equal(writes.length, 3, 'and leaves nothing for the turn\'s end')
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

test('what is queued when the process exits is written', { timeout: 20_000 }, async (t) => {
  const { code, stdout, stderr } = await child('sink.write("one\\n"); sink.write("two\\n"); process.exit(3)')
  t.assert.equal(code, 3, stderr)
  t.assert.equal(stdout, 'one\ntwo\n')
})

test('a closed stdout ends logging, not the process', { timeout: 20_000 }, async (t) => {
  const { code, stderr } = await child(`
    for (let i = 0; i < 50; i++) { sink.write('x'.repeat(4096) + '\\n'); await new Promise((resolve) => setTimeout(resolve, 5)) }
    process.exitCode = 7`, true)
  t.assert.equal(code, 7, stderr)
})

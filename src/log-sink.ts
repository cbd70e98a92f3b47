import pino from 'pino'

/** Where pino writes its lines: `write(line)` per line; `flush`/`flushSync` as pino calls them. */
export interface LineSink {
  write: (line: string) => void
  /** Hands on what is queued now; `done` once handed on. */
  flush: (done?: (error?: Error) => void) => void
  /** Hands on what is queued before returning (pino calls it after a `fatal` line; the exit listener). */
  flushSync: () => void
}

/**
 * The log lines of one event-loop turn, handed on together at its end (setImmediate) in one
 * `write`. Hand-written because pino has no such mode: its destination writes each line with
 * its own system call (`sync: true`) or through libuv's thread pool (`sync: false`, one
 * hand-off per write), and under PM2, whose workers' `process.stdout.write` sends every chunk
 * to the daemon as an IPC message, pino writes each line there. Under load one turn answers
 * many requests, so a line costs a share of one write (bench/log-cost.ts, bench/pm2-log-cost.ts);
 * idle, a line still goes out in its own turn.
 */
export function turnBatchedSink (write: (chunk: string) => void): LineSink {
  let lines: string[] = []
  const handOn = (): void => {
    if (lines.length === 0) return
    const batch = lines
    lines = []
    write(batch.length === 1 ? batch[0] : batch.join(''))
  }
  return {
    write (line: string): void {
      if (lines.push(line) === 1) setImmediate(handOn)
    },
    flush (done?: (error?: Error) => void): void {
      handOn()
      done?.()
    },
    flushSync: handOn
  }
}

/**
 * A file or descriptor through pino's own destination, fed once per turn. Synchronous (partial
 * writes and EAGAIN handled by pino's SonicBoom): an asynchronous write still on libuv's thread
 * pool when the process exits is lost, and so were lines queued at exit beyond what a pipe holds.
 * A failed write (a closed pipe, a full disk) drops lines instead of ending the process.
 */
export function destinationSink (dest: number | string): LineSink {
  const out = pino.destination({ dest, sync: true })
  out.on('error', () => {}) // pino's own listener silences EPIPE; any other error would be thrown
  return turnBatchedSink((chunk) => {
    try { out.write(chunk) } catch { /* a synchronous write failed: the lines are dropped */ }
  })
}

let stdout: LineSink | undefined

/**
 * The process's one sink on stdout. Where something has replaced `process.stdout.write` (PM2,
 * whose version feeds `pm2 logs` and the app's log file), through it, as pino itself does then;
 * elsewhere through pino's destination on fd 1. What is still queued at exit is handed on by an
 * exit listener: written to fd 1 before the process ends; under PM2 only handed to its
 * asynchronous writes, which may not finish.
 */
export function stdoutSink (): LineSink {
  if (stdout === undefined) {
    const replaced = process.stdout.write !== Object.getPrototypeOf(process.stdout).write
    let open = true
    if (replaced) process.stdout.once('error', () => { open = false })
    const sink = replaced ? turnBatchedSink((chunk) => { if (open) process.stdout.write(chunk) }) : destinationSink(1)
    process.once('exit', () => { sink.flushSync() })
    stdout = sink
  }
  return stdout
}

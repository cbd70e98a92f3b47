/** Where pino writes its lines, one `write(line)` per line. */
export interface LineSink { write: (line: string) => void, flush: () => void }

/**
 * The log lines of one event-loop turn, handed on together at its end (setImmediate) in one
 * `write`. Hand-written because pino has no such mode: its destination writes each line with
 * its own system call (`sync: true`) or through libuv's thread pool (`sync: false`), and under
 * PM2, whose workers' `process.stdout.write` sends every chunk to the daemon as an IPC
 * message, pino writes each line there. Under load one turn answers many requests, so a line
 * costs a share of one write (bench/log-cost.ts); idle, a line still goes out in its own turn.
 */
export function turnBatchedSink (write: (chunk: string) => void): LineSink {
  let lines: string[] = []
  const flush = (): void => {
    if (lines.length === 0) return
    const batch = lines
    lines = []
    write(batch.length === 1 ? batch[0] : batch.join(''))
  }
  return {
    write (line: string): void {
      if (lines.push(line) === 1) setImmediate(flush)
    },
    flush
  }
}

let stdout: LineSink | undefined

/**
 * The process's one sink on stdout. Through `process.stdout.write`, as pino itself does once
 * PM2 has replaced it (the lines then reach `pm2 logs`); synchronous for files and pipes on
 * Linux, so what is queued at exit is written by the exit listener. A closed stdout (EPIPE)
 * ends logging instead of the process.
 */
export function stdoutSink (): LineSink {
  if (stdout === undefined) {
    let open = true
    process.stdout.once('error', () => { open = false })
    const sink = turnBatchedSink((chunk) => { if (open) process.stdout.write(chunk) })
    process.once('exit', sink.flush)
    stdout = sink
  }
  return stdout
}

/**
 * Preloaded into every test file's process (package.json: `--import`). With --test-force-exit,
 * Node's test runner calls process.exit() once its reporter stream closes, but the reporter's
 * last bytes may still be queued on stdout (a pipe to the parent runner, full under load), and
 * process.exit() drops them: the parent then reports fewer tests than ran, with no failure
 * (nodejs/node#64833; seen here as the last subtests of test/http/conditional.test.ts missing).
 * This exit waits for stdout to drain first (at most 10 s).
 */
const exit = process.exit.bind(process)
const drainedExit = (code?: number | string | null): never => {
  if (process.stdout.writableLength === 0) return exit(code)
  const done = (): never => exit(code)
  process.stdout.once('drain', done)
  setTimeout(done, 10_000)
  return undefined as never
}
process.exit = drainedExit as typeof process.exit

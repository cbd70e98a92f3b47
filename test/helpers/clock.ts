import type { TestContext } from 'node:test'

/** Fake wall-clock time for freshness tests: Date only, so sockets and timers keep working. */
export function fakeClock (t: TestContext): { advance: (seconds: number) => void } {
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
  return { advance: (seconds) => t.mock.timers.tick(seconds * 1000) }
}

/** Lets queued background work (a refresh, a store write) run. */
export async function settle (ms = 50): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

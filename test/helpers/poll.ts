/**
 * The one polling helper: calls `check` every `intervalMs` until it returns a value other than
 * undefined/false, and returns that value; throws naming `what` after `timeoutMs`. Tests wait for
 * background work (a refresh, a store write, a worker's restart) with it instead of fixed sleeps,
 * so a slow machine makes them slower, not red.
 */
export async function until<T> (
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 25 }: { timeoutMs?: number, intervalMs?: number } = {}
): Promise<T> {
  // performance.now, not Date: freshness tests mock Date (helpers/clock.ts).
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** `until` for a plain condition: whether it came to hold within `timeoutMs` (the caller asserts). */
export async function waitFor (predicate: () => boolean, timeoutMs = 2000, intervalMs = 20): Promise<boolean> {
  try {
    return await until('condition', () => predicate(), { timeoutMs, intervalMs })
  } catch {
    return predicate()
  }
}

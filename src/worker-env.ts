import { readFileSync } from 'node:fs'

/**
 * Environment every worker process starts with, beyond the configuration. PM2's cluster
 * workers start with the environment of the PM2 daemon, which it takes from the command that
 * spawned it (the ecosystem file is read later, and its `env` reaches only JavaScript's
 * process.env): so `npm start` (src/start.ts) passes this to the pm2 command it runs, and
 * bench/ and the PM2 test helper do as it does.
 *
 * glibc's malloc (issue #13, a 1 GiB body streamed through): Node reads each socket into a
 * fresh 64 KiB buffer, and V8 frees the dead ones only at its next GC, which external memory
 * triggers after about 64 MB (V8's external allocation soft limit). glibc then gives that
 * free heap top back to the kernel (trim threshold 128 KiB), and the next 64 MB are faulted
 * in again page by page: ~150,000 page faults and 3-4 s of kernel CPU per GiB. Keeping up
 * to 64 MiB of free heap per worker removes them (6.2 -> 1.3 s of CPU per GiB in a same-run A/B,
 * docs/performance.md, "Session 5: the allocator"). It can only be set at process start (there is no mallopt() from
 * JavaScript), hence the environment. Ignored by other C libraries (musl).
 */
const TUNABLES: Record<string, string> = {
  'glibc.malloc.trim_threshold': String(64 * 1024 * 1024)
}

/**
 * GLIBC_TUNABLES for a worker: the operator's own (from `env`) first and kept as given, then
 * this project's for the tunables they do not name.
 */
export function workerEnv (env: NodeJS.ProcessEnv = process.env): { GLIBC_TUNABLES: string } {
  const own = pairs(env.GLIBC_TUNABLES ?? '')
  const named = names(own)
  const added = Object.entries(TUNABLES).filter(([name]) => !named.has(name)).map(([name, value]) => `${name}=${value}`)
  return { GLIBC_TUNABLES: [...own, ...added].join(':') }
}

/** A GLIBC_TUNABLES value's `name=value` pairs, as given (anything else dropped). */
function pairs (value: string): string[] {
  return value.split(':').filter((pair) => pair.includes('='))
}

function names (given: string[]): Set<string> {
  return new Set(given.map((pair) => pair.slice(0, pair.indexOf('='))))
}

/**
 * The tunables above that a process started without, from its start-up environment as
 * `/proc/self/environ` gives it (NUL-separated): what glibc read, unlike process.env, which
 * PM2 fills from the ecosystem file after the start. Empty when all are there.
 */
export function missingTunables (environ: string): string[] {
  const line = environ.split('\0').find((entry) => entry.startsWith('GLIBC_TUNABLES=')) ?? ''
  const named = names(pairs(line.slice('GLIBC_TUNABLES='.length)))
  return Object.keys(TUNABLES).filter((name) => !named.has(name))
}

/**
 * Linux with glibc: the start-up environment to check; undefined elsewhere (nothing to say)
 * or when it cannot be read. Run before listen(): the diagnostic report that names the C
 * library walks every open handle (without their network details: no reverse DNS lookups).
 */
export function startEnviron (): string | undefined {
  if (process.platform !== 'linux') return undefined
  // excludeNetwork: Node >= 20.13, not in @types/node yet; set back after, for the operator's own reports.
  const report = process.report as typeof process.report & { excludeNetwork?: boolean }
  const excluded = report.excludeNetwork
  try {
    report.excludeNetwork = true
    const header = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header
    if (header?.glibcVersionRuntime === undefined) return undefined
    return readFileSync('/proc/self/environ', 'latin1')
  } catch {
    return undefined
  } finally {
    report.excludeNetwork = excluded
  }
}

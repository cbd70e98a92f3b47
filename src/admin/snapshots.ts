import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { mkdirSync, rmSync, watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'

/** A snapshot older than this is a worker that stopped: left out of the merge. */
export const LIVE_MS = 5000
/** ... and deleted once older than this. */
const FORGET_MS = 3_600_000
/** How long a scrape waits for the other live workers to answer its request for fresh snapshots. */
export const FRESH_WAIT_MS = 500
/**
 * How often a worker looks whether another worker wants a fresh snapshot where the directory
 * cannot be watched; where it can (inotify), a look once a second only covers lost events.
 * Polling every 50 ms cost an idle worker ~2.5% of a core (40 stat calls a second, each a
 * thread-pool round trip, for this directory and the dashboard's).
 */
const POLL_MS = 50
const WATCHED_POLL_MS = 1000
const WANT = 'want-fresh'

/**
 * Metrics snapshots shared by the PM2 workers of one store. PM2 cluster workers have no
 * primary process we control (prom-client's AggregatorRegistry asks Node's cluster primary,
 * which is PM2's own God process), so each worker writes its registry as JSON to
 * `<dir>/<pid>.json` (write then rename: a reader never sees half a file), and the worker a
 * scrape lands on merges its own with the live ones of the others.
 */
export class SnapshotDirectory {
  private readonly own: string

  constructor (private readonly dir: string, private readonly id: string) {
    this.own = join(dir, `${id}.json`)
  }

  /** `sqlite://<path>` → `<path>-metrics`; undefined for stores of one process. */
  static forStore (uri: string): string | undefined {
    if (!uri.startsWith('sqlite://')) return undefined
    const path = uri.slice('sqlite://'.length)
    return path === ':memory:' ? undefined : `${path}-metrics`
  }

  async write (snapshot: unknown): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const temporary = `${this.own}.${process.hrtime.bigint()}.tmp`
    await writeFile(temporary, JSON.stringify(snapshot))
    await rename(temporary, this.own)
  }

  /** The other workers' snapshots written in the last LIVE_MS; older ones are skipped (and, after an hour, deleted). */
  async others (now = Date.now()): Promise<unknown[]> {
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch {
      return []
    }
    const found: unknown[] = []
    for (const name of names) {
      const path = join(this.dir, name)
      if (path === this.own) continue
      try {
        const age = now - (await stat(path)).mtimeMs
        // Snapshots of workers long gone, and temporary files a killed writer left.
        if (age > FORGET_MS) await unlink(path)
        if (age > LIVE_MS || !name.endsWith('.json')) continue
        found.push(JSON.parse(await readFile(path, 'utf8')))
      } catch {
        // Renamed over or deleted meanwhile, or unreadable: that worker is left out of this scrape.
      }
    }
    return found
  }

  /**
   * Asks every worker for a snapshot newer than now (they watch the `want-fresh` file, see
   * `wanted`), then waits, at most FRESH_WAIT_MS, until each live worker's snapshot is newer:
   * a scrape right after traffic counts every request answered before it, on any worker.
   */
  async fresh (): Promise<unknown[]> {
    const asked = Date.now()
    try {
      await mkdir(this.dir, { recursive: true })
      await writeFile(join(this.dir, WANT), String(asked))
    } catch {
      return await this.others()
    }
    const deadline = asked + FRESH_WAIT_MS
    while (Date.now() < deadline && await this.stale(asked)) await new Promise((resolve) => setTimeout(resolve, 10))
    return await this.others()
  }

  /** Whether some other live worker's snapshot is older than `asked`. */
  private async stale (asked: number): Promise<boolean> {
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch {
      return false
    }
    for (const name of names) {
      const path = join(this.dir, name)
      if (path === this.own || !name.endsWith('.json')) continue
      try {
        const age = asked - (await stat(path)).mtimeMs
        if (age > 0 && age <= LIVE_MS) return true
      } catch {
        // gone meanwhile
      }
    }
    return false
  }

  /**
   * Publishes `snapshot()` every `everyMs`, whenever another worker's `fresh` asks, and on
   * `publish()`; one write at a time, a failed one handed to `failed`. `close()` stops, waits
   * for the last write and removes this worker's file (its counts leave the totals).
   */
  publisher (snapshot: () => unknown, failed: (error: unknown) => void, everyMs: number): { publish: () => Promise<void>, close: () => Promise<void> } {
    let last: Promise<void> = Promise.resolve()
    const publish = (): Promise<void> => {
      last = last.then(async () => { await this.write(await snapshot()) }).catch(failed)
      return last
    }
    const timer = setInterval(() => { publish() }, everyMs)
    timer.unref()
    const stopAnswering = this.answerRequests(publish)
    const close = async (): Promise<void> => {
      clearInterval(timer)
      await stopAnswering()
      await last
      this.remove()
    }
    return { publish, close }
  }

  /**
   * Calls `publish` whenever another worker's `fresh` asks: told by a watch on the directory
   * (and a look once a second for lost events), or looking every POLL_MS where it cannot be
   * watched (then trying to watch again once a second). Returns the stop, which resolves once
   * a look under way has ended: nothing is published after it.
   */
  private answerRequests (publish: () => Promise<void>): () => Promise<void> {
    let answered = Date.now()
    let stopped = false
    let looking: Promise<void> | undefined
    let again = false
    let watcher: FSWatcher | undefined
    let timer: NodeJS.Timeout | undefined
    const look = (found?: () => void): void => {
      if (stopped) return
      if (looking !== undefined) {
        again = true // asked while a look runs: look once more after it
        return
      }
      looking = this.wanted().then(async (wanted) => {
        if (stopped || wanted <= answered) return
        answered = wanted
        found?.()
        await publish()
      }).catch(() => {}).finally(() => {
        looking = undefined
        if (again) {
          again = false
          look()
        }
      })
    }
    const startWatching = (): void => {
      if (stopped) return
      watcher?.close()
      watcher = this.watch(() => { look() }, () => {
        watcher = undefined
        every(POLL_MS)
      })
      every(watcher === undefined ? POLL_MS : WATCHED_POLL_MS)
    }
    const every = (everyMs: number): void => {
      clearInterval(timer)
      let ticks = 0
      timer = setInterval(() => {
        if (watcher === undefined) {
          // Not watching: look every tick, and try to watch again once a second.
          if (++ticks % Math.round(WATCHED_POLL_MS / POLL_MS) === 0) startWatching()
          look()
          return
        }
        // A request the watch did not report (its directory deleted and made again, say): watch
        // anew. (Also when its event merely comes later in this loop turn: a needless re-watch.)
        look(startWatching)
      }, everyMs)
      timer.unref()
    }
    startWatching()
    return async () => {
      stopped = true
      clearInterval(timer)
      watcher?.close()
      await looking
    }
  }

  /** Calls `changed` when the `want-fresh` file is written (or on any event where Node cannot name the file); undefined where the directory cannot be watched, `failed` when a watch breaks. */
  private watch (changed: () => void, failed: () => void): FSWatcher | undefined {
    try {
      mkdirSync(this.dir, { recursive: true })
      const watcher = watch(this.dir, { persistent: false }, (_event, name) => {
        if (name === null || name === WANT) changed()
      })
      watcher.on('error', () => {
        watcher.close()
        failed()
      })
      return watcher
    } catch {
      return undefined
    }
  }

  /** The time of the newest request for fresh snapshots (0 when none). Cheap: one stat. */
  private async wanted (): Promise<number> {
    try {
      return (await stat(join(this.dir, WANT))).mtimeMs
    } catch {
      return 0
    }
  }

  /** Removes this worker's snapshot (on close: its counts leave the totals). */
  remove (): void {
    rmSync(this.own, { force: true })
  }
}

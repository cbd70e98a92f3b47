import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { join } from 'node:path'

/** A snapshot older than this is a worker that stopped: left out of the merge. */
export const LIVE_MS = 5000
/** ... and deleted once older than this. */
const FORGET_MS = 3_600_000

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

  /** Removes this worker's snapshot (on close: its counts leave the totals). */
  remove (): void {
    rmSync(this.own, { force: true })
  }
}

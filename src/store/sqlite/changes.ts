import { noop } from '../settings.ts'
import { SharedGeneration } from './generation.ts'
import type { Query } from './schema.ts'

/** How long a logged change is kept for the other processes to read. */
const KEEP_MS = 60_000

/**
 * The change log that lets the processes sharing a file tell each other which keys they
 * wrote or deleted, so that their in-memory tiers drop copies another process replaced or
 * invalidated. Each logged change also bumps the shared generation word (generation.ts),
 * which a memory-tier hit reads first; the log is polled every changePollMs as well.
 */
export class ChangeFeed {
  private readonly listeners: Array<(key: string) => void> = []
  /** The last change seen; +Infinity until the first open reads the current one. */
  private lastSeq = Number.POSITIVE_INFINITY
  private pollTimer: NodeJS.Timeout | undefined
  /** Polls of the change log run one after the other; `pollQueued` is one not started yet. */
  private pollChain: Promise<void> = Promise.resolve()
  private pollQueued: Promise<void> | undefined
  /** Bumped after every logged change, read before every memory-tier hit. */
  private generation: SharedGeneration | undefined
  private syncing: Promise<void> | undefined
  private stopped = false

  constructor (private readonly query: Query, private readonly owner: string, private readonly pollMs: number) {}

  /** Run on each new connection: after a reopen, changes made meanwhile are still reported (unless it is a new file). */
  readonly prepare = async (query: Query): Promise<void> => {
    const rows = await query('SELECT MAX(seq) AS seq FROM changes')
    this.lastSeq = Math.min(this.lastSeq, Number(rows[0]?.seq ?? 0))
  }

  /** Opens the generation word beside the file (`<path>-gen`). */
  openGeneration (path: string): void {
    this.generation = SharedGeneration.open(`${path}-gen`)
  }

  onRemoteChange (listener: (key: string) => void): void {
    this.listeners.push(listener)
    if (this.pollTimer === undefined && !this.stopped) {
      this.pollTimer = setInterval(() => { this.poll().catch(noop) }, this.pollMs)
      this.pollTimer.unref()
    }
  }

  changedElsewhere (): boolean {
    return this.listeners.length > 0 && this.generation !== undefined && this.generation.changed()
  }

  /** One sync at a time; a caller arriving during one waits for it and syncs again if the word moved since. */
  async sync (): Promise<void> {
    const generation = this.generation
    if (generation === undefined) return
    for (let round = 0; round < 3 && this.changedElsewhere(); round++) {
      if (this.syncing === undefined) {
        const seen = generation.read()
        this.syncing = this.poll().then(() => generation.mark(seen), noop).finally(() => { this.syncing = undefined })
      }
      await this.syncing
    }
  }

  /** Logs that this process changed `key` (only when someone listens: a single process needs no log). */
  async log (key: string): Promise<void> {
    const writer = this.writer()
    if (writer === null) return
    await this.query('INSERT INTO changes (key, writer, at) VALUES (?, ?, ?)', key, writer, Date.now())
    this.logged()
  }

  /** The writer to log a change under (a write that logs its own row), or null when nobody listens. */
  writer (): string | null {
    return this.listeners.length === 0 ? null : this.owner
  }

  /** A change was logged under writer(): tells the other processes to look. */
  logged (): void {
    this.generation?.bump()
  }

  /** Deletes the changes older than every reader needs. */
  async prune (now = Date.now()): Promise<void> {
    await this.query('DELETE FROM changes WHERE at < ?', now - KEEP_MS)
  }

  /** Reads the change log once, after any poll already running; polls asked for meanwhile share one. */
  private poll (): Promise<void> {
    if (this.pollQueued !== undefined) return this.pollQueued
    const queued = this.pollChain.then(async () => {
      this.pollQueued = undefined
      await this.pollOnce()
    })
    this.pollQueued = queued
    this.pollChain = queued.catch(noop)
    return queued
  }

  private async pollOnce (): Promise<void> {
    try {
      const rows = await this.query('SELECT seq, key, writer FROM changes WHERE seq > ? ORDER BY seq', this.lastSeq)
      for (const row of rows) {
        this.lastSeq = Number(row.seq)
        if (row.writer !== this.owner) this.tell(String(row.key))
      }
      if (Math.random() < 0.02) await this.prune()
    } catch {
      // A failing store is reported by the requests that use it.
    }
  }

  private tell (key: string): void {
    for (const listener of this.listeners) {
      try {
        listener(key)
      } catch {
        // A listener's failure must not stop the others or the polling.
      }
    }
  }

  stop (): void {
    this.stopped = true
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer)
  }

  close (): void {
    this.stop()
    this.generation?.close()
  }
}

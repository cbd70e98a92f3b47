import { closeSync, openSync, readSync, writeSync, constants } from 'node:fs'
import { randomFillSync } from 'node:crypto'

/**
 * A word in a small file that every process sharing a store rewrites after each change it
 * logs, so that another process can tell with one `pread` (~1 µs, no promise) whether it
 * must look at the change log before answering from its own memory. The value is random,
 * not a counter: two writers need no lock, and any difference means "look again" (a torn
 * read can only cause a needless look).
 */
export class SharedGeneration {
  private readonly current = Buffer.alloc(8)
  private readonly seen = Buffer.alloc(8)
  private readonly next = Buffer.alloc(8)

  private constructor (private fd: number | undefined) {
    if (fd !== undefined) this.mark(this.read())
  }

  /** Opens (creating) the file; a generation that cannot be opened reports no changes. */
  static open (path: string): SharedGeneration {
    try {
      return new SharedGeneration(openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644))
    } catch {
      return new SharedGeneration(undefined)
    }
  }

  get usable (): boolean {
    return this.fd !== undefined
  }

  /** Reads the shared word; returns a copy to hand to `mark` once the changes it covers were seen. */
  read (): Buffer {
    if (this.fd === undefined) return Buffer.from(this.current)
    try {
      readSync(this.fd, this.current, 0, 8, 0)
    } catch {}
    return Buffer.from(this.current)
  }

  /** True when the word differs from the last one marked as seen. */
  changed (): boolean {
    if (this.fd === undefined) return false
    try {
      readSync(this.fd, this.current, 0, 8, 0)
    } catch {
      return false
    }
    return !this.current.equals(this.seen)
  }

  mark (seen: Buffer): void {
    seen.copy(this.seen)
  }

  /** Tells every other process that the change log has something new. */
  bump (): void {
    if (this.fd === undefined) return
    randomFillSync(this.next)
    try {
      writeSync(this.fd, this.next, 0, 8, 0)
    } catch {}
  }

  close (): void {
    if (this.fd === undefined) return
    try {
      closeSync(this.fd)
    } catch {}
    this.fd = undefined
  }
}

import { closeSync, openSync, watch, writeSync, constants, type FSWatcher } from 'node:fs'

/**
 * Wakes the processes waiting for another one's write (coalescing across workers) at once
 * instead of at their next poll: every entry write rewrites one byte of `<file>-wake`, and a
 * process with waiters watches that file (inotify on Linux). Only while someone waits is a
 * watcher open, so idle processes get no events. A wake is a hint: the waiter still reads
 * the store to see what changed, and keeps polling in case a watch cannot be set up.
 */
export class WakeFile {
  private fd: number | undefined
  private watcher: FSWatcher | undefined
  private readonly listeners = new Set<() => void>()
  private readonly byte = Buffer.alloc(1)

  constructor (private readonly path: string) {}

  /** Opens (creating) the file; a file that cannot be opened wakes no one (waiters poll). */
  open (): void {
    try {
      this.fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT, 0o644)
    } catch {
      this.fd = undefined
    }
  }

  /** Tells the watching processes that an entry was written (one pwrite, never throws). */
  touch (): void {
    if (this.fd === undefined) return
    this.byte[0] = (this.byte[0] + 1) & 0xff
    try {
      writeSync(this.fd, this.byte, 0, 1, 0)
    } catch {}
  }

  /** Calls `listener` after each write seen by another process until the returned function is called. */
  watch (listener: () => void): () => void {
    this.listeners.add(listener)
    this.startWatching()
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) this.stopWatching()
    }
  }

  private startWatching (): void {
    if (this.watcher !== undefined || this.fd === undefined) return
    try {
      this.watcher = watch(this.path, { persistent: false }, () => {
        for (const listener of [...this.listeners]) {
          try { listener() } catch {}
        }
      })
      this.watcher.on('error', () => this.stopWatching())
    } catch {
      this.watcher = undefined
    }
  }

  private stopWatching (): void {
    const watcher = this.watcher
    this.watcher = undefined
    try { watcher?.close() } catch {}
  }

  close (): void {
    this.listeners.clear()
    this.stopWatching()
    if (this.fd === undefined) return
    try { closeSync(this.fd) } catch {}
    this.fd = undefined
  }
}

import { noop } from '../settings.ts'
import type { Connection } from './connection.ts'
import { ACQUIRE, RELEASE } from './scripts.ts'

/**
 * Leases in Redis: `SET P l:<key> "<owner>|<client id>|<expiresAt>" PX ttl` through a script
 * that refuses while another owner's lease is unexpired; release is compare-and-delete.
 * Expiry is judged by this process's clock (`expiresAt`, so the contract's clock applies),
 * with Redis' own PX as the backstop. A holder whose Redis connection is gone (its process
 * died: Redis sees the socket close) is taken over at once: its client id is no longer in
 * CLIENT LIST.
 */
export class RedisLeases {
  private readonly held = new Set<string>()

  constructor (private readonly redis: Connection, private readonly prefix: string, private readonly owner: string) {}

  async acquire (key: string, ttlMs: number): Promise<boolean> {
    try {
      return await this.tryAcquire(key, ttlMs)
    } catch (error) {
      // A timed-out SET may still be applied once Redis answers: give back what the caller
      // thinks it does not hold (queued after it on the same connection).
      this.release(key).catch(noop)
      throw error
    }
  }

  private async tryAcquire (key: string, ttlMs: number): Promise<boolean> {
    const name = this.name(key)
    // A lease names its connection so that others can see the holder die; right after connecting
    // the id may not be known yet (ready() asks for it): ask now rather than take a lease others
    // could only wait out.
    if (this.redis.clientId === 0) {
      const id = Number(await this.redis.command(['CLIENT', 'ID']).catch(() => 0))
      if (id > 0 && this.redis.clientId === 0) this.redis.clientId = id
    }
    const now = Date.now()
    const value = `${this.owner}|${this.redis.clientId}|${now + ttlMs}`
    let answer = await this.redis.eval(ACQUIRE, [name, this.owner, value, now, ttlMs, ''])
    if (answer !== 1 && Buffer.isBuffer(answer) && !(await this.holderAlive(answer.toString()))) {
      // Take over only that dead holder's lease: a new holder since then keeps it.
      answer = await this.redis.eval(ACQUIRE, [name, this.owner, value, now, ttlMs, answer])
    }
    if (answer !== 1) return false
    this.held.add(key)
    return true
  }

  async release (key: string): Promise<void> {
    this.held.delete(key)
    await this.redis.eval(RELEASE, [this.name(key), this.owner])
  }

  async has (key: string): Promise<boolean> {
    const value = await this.redis.command(['GET', this.name(key)])
    if (!Buffer.isBuffer(value)) return false
    const text = value.toString()
    const expiresAt = Number(text.slice(text.lastIndexOf('|') + 1))
    return expiresAt > Date.now() && await this.holderAlive(text)
  }

  /** Releases this instance's leases (at close); never throws. */
  async releaseAll (): Promise<void> {
    await Promise.all([...this.held].map((key) => this.release(key).catch(noop)))
  }

  private async holderAlive (value: string): Promise<boolean> {
    const parts = value.split('|')
    const id = Number(parts[parts.length - 2])
    if (!(id > 0)) return true // taken before its connection knew its id: wait for expiry
    // Not cached: a holder that just died must be seen at once.
    try {
      const list = await this.redis.command(['CLIENT', 'LIST', 'ID', String(id)])
      return Buffer.isBuffer(list) ? list.length > 0 : true
    } catch {
      return true // unknown (Redis slow): the lease stands
    }
  }

  private name (key: string): string {
    return `${this.prefix}l:${key}`
  }
}

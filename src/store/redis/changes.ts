import type { StoreLogger } from '../contract.ts'
import { Connection } from './connection.ts'

/**
 * Change notifications over Redis pub/sub. Every write and delete publishes `{id, key}` on
 * the channel from inside its script (scripts.ts), so the message leaves Redis before the
 * writer hears that its write is done. Each store instance subscribes on its own connection
 * and tells its listeners about the other instances' keys as each message arrives.
 *
 * `changedElsewhere()` is true while notifications may be missing: before the subscription
 * is confirmed and whenever the subscribing connection is down (then nothing from memory
 * tiers can be trusted), and while a message that arrived is not yet delivered.
 */
export class ChangeChannel {
  private readonly listeners: Array<(key: string) => void> = []
  private readonly subscriber: Connection
  private readonly pending: string[] = []
  private subscribed = false
  private everSubscribed = false

  constructor (url: string, timeoutMs: number, readonly channel: string, private readonly owner: string, log: StoreLogger | undefined) {
    this.subscriber = new Connection(url, timeoutMs, 'subscriber', log)
    // node-redis subscribes again after each reconnect; until then, notifications may be lost.
    this.subscriber.client.on('error', () => { this.subscribed = false })
    this.subscriber.client.on('end', () => { this.subscribed = false })
  }

  /** Connects and subscribes in the background; waits up to `waitMs` for it. */
  async start (waitMs: number): Promise<void> {
    await this.subscriber.start(waitMs)
    const subscribing = this.subscribe()
    await Promise.race([subscribing, new Promise((resolve) => setTimeout(resolve, waitMs).unref())])
  }

  private async subscribe (): Promise<void> {
    // After a reconnect node-redis subscribes again by itself, if a first subscribe succeeded.
    this.subscriber.client.on('ready', () => {
      if (this.everSubscribed) this.subscribed = true
      else this.trySubscribe().catch(() => {})
    })
    await this.trySubscribe()
  }

  private async trySubscribe (): Promise<void> {
    if (this.everSubscribed || !this.subscriber.client.isReady) return
    try {
      await this.subscriber.client.subscribe(this.channel, (message) => { this.arrived(message) })
      this.everSubscribed = true
      this.subscribed = this.subscriber.client.isReady
    } catch {
      // Tried again on the next 'ready'.
    }
  }

  /** The message written for a change of `key` by this instance. */
  message (key: string): string {
    return JSON.stringify({ id: this.owner, key })
  }

  onRemoteChange (listener: (key: string) => void): void {
    this.listeners.push(listener)
  }

  changedElsewhere (): boolean {
    return this.listeners.length > 0 && (this.pending.length > 0 || !this.subscribed)
  }

  /** Delivers what has arrived; never rejects. */
  async sync (): Promise<void> {
    this.deliver()
  }

  get reason (): string | undefined {
    const down = this.subscriber.reason
    if (down !== undefined) return `change notifications: ${down}`
    return this.subscribed ? undefined : 'change notifications: not subscribed yet'
  }

  private arrived (message: string): void {
    let change: { id?: unknown, key?: unknown }
    try {
      change = JSON.parse(message)
    } catch {
      return
    }
    if (change.id === this.owner || typeof change.key !== 'string') return
    this.pending.push(change.key)
    // Delivered at once: a memory tier drops the key before this process reads its next request.
    this.deliver()
  }

  private deliver (): void {
    while (this.pending.length > 0) {
      const key = this.pending.shift() as string
      for (const listener of this.listeners) {
        try {
          listener(key)
        } catch {
          // A listener's failure must not stop the others.
        }
      }
    }
  }

  async close (): Promise<void> {
    this.listeners.length = 0
    await this.subscriber.close()
  }
}

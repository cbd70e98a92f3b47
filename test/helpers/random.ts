import { randomInt } from 'node:crypto'

/** mulberry32: a small deterministic PRNG. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A seeded source of random choices, so that a failing run can be replayed from its seed. */
export class Random {
  readonly next: () => number
  constructor (seed: number) { this.next = prng(seed) }
  int (max: number): number { return Math.floor(this.next() * max) }
  chance (p: number): boolean { return this.next() < p }
  pick<T> (items: readonly T[]): T { return items[this.int(items.length)] }
  bytes (n: number, from = 0, to = 256): Buffer { return Buffer.from(Array.from({ length: n }, () => from + this.int(to - from))) }
  printable (n: number): string { return this.bytes(n, 0x21, 0x7f).toString('latin1') }
  token (n: number): string {
    const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
    return Array.from({ length: Math.max(1, n) }, () => this.pick(chars.split(''))).join('')
  }
}

/** The seed of a fuzz run: `<envName>` when set (to replay a failure), else a random one. */
export function seedFrom (envName: string): number {
  const value = process.env[envName]
  return value !== undefined && value !== '' ? Number(value) : randomInt(2 ** 31)
}

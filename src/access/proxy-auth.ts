import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

/**
 * Basic credentials for the proxy: `user:password` pairs (PROXY_AUTH) or
 * `user:scrypt$<salt>$<hash>` lines (PROXY_AUTH_FILE, made by `npm run hash-password`).
 */
export type Verifier = (header: string | undefined) => Promise<string | undefined>

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, length: number) => Promise<Buffer>
const KEY_BYTES = 32
const REMEMBERED = 1000

export function hashPassword (user: string, password: string): string {
  const salt = randomBytes(16)
  return `${user}:scrypt$${salt.toString('base64')}$${scryptSync(password, salt, KEY_BYTES).toString('base64')}`
}

function equal (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

type Check = (password: string) => Promise<boolean>
/** Derives a scrypt key off the event loop (tests pass a counting wrapper). */
export type Derive = (password: string, salt: Buffer, length: number) => Promise<Buffer>

function hashedCheck (salt: Buffer, hash: Buffer, derive: Derive): Check {
  return async (password) => equal(await derive(password, salt, hash.length), hash)
}

/**
 * A function that resolves to the user named by a valid `Basic` header value, else undefined.
 * scrypt runs off the event loop, an unknown user costs the same hash as a known one (no
 * user enumeration by timing), and header values already verified are remembered.
 */
export function basicVerifier (entries: string[], derive: Derive = scryptAsync): Verifier {
  const users = new Map<string, Check>()
  for (const entry of entries) {
    const colon = entry.indexOf(':')
    const user = entry.slice(0, colon)
    const secret = entry.slice(colon + 1)
    const hashed = /^scrypt\$([^$]+)\$([^$]+)$/.exec(secret)
    if (hashed !== null) {
      users.set(user, hashedCheck(Buffer.from(hashed[1], 'base64'), Buffer.from(hashed[2], 'base64'), derive))
    } else {
      const expected = Buffer.from(secret)
      users.set(user, async (password) => equal(Buffer.from(password), expected))
    }
  }
  const anyHashed = entries.some((entry) => entry.includes(':scrypt$'))
  const decoy = hashedCheck(randomBytes(16), randomBytes(KEY_BYTES), derive)
  const verified = new Map<string, string>()

  return async (header) => {
    const match = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '')
    if (match === null) return undefined
    const known = verified.get(match[1])
    if (known !== undefined) return known
    const decoded = Buffer.from(match[1], 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0) return undefined
    const user = decoded.slice(0, colon)
    const check = users.get(user) ?? (anyHashed ? decoy : undefined)
    if (check === undefined || !(await check(decoded.slice(colon + 1))) || !users.has(user)) return undefined
    if (verified.size >= REMEMBERED) verified.clear()
    verified.set(match[1], user)
    return user
  }
}

import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto'

/**
 * Basic credentials for the proxy: `user:password` pairs (PROXY_AUTH) or
 * `user:scrypt$<salt>$<hash>` lines (PROXY_AUTH_FILE, made by `npm run hash-password`).
 */
export type Verifier = (header: string | undefined) => string | undefined

const KEY_BYTES = 32

export function hashPassword (user: string, password: string): string {
  const salt = randomBytes(16)
  return `${user}:scrypt$${salt.toString('base64')}$${scryptSync(password, salt, KEY_BYTES).toString('base64')}`
}

function equal (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** A function that returns the user named by a valid `Basic` header value, else undefined. */
export function basicVerifier (entries: string[]): Verifier {
  const users = new Map<string, (password: string) => boolean>()
  for (const entry of entries) {
    const colon = entry.indexOf(':')
    const user = entry.slice(0, colon)
    const secret = entry.slice(colon + 1)
    const hashed = /^scrypt\$([^$]+)\$([^$]+)$/.exec(secret)
    if (hashed !== null) {
      const salt = Buffer.from(hashed[1], 'base64')
      const hash = Buffer.from(hashed[2], 'base64')
      users.set(user, (password) => equal(scryptSync(password, salt, hash.length), hash))
    } else {
      const expected = Buffer.from(secret)
      users.set(user, (password) => equal(Buffer.from(password), expected))
    }
  }
  return (header) => {
    const match = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '')
    if (match === null) return undefined
    const decoded = Buffer.from(match[1], 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0) return undefined
    const user = decoded.slice(0, colon)
    return users.get(user)?.(decoded.slice(colon + 1)) === true ? user : undefined
  }
}

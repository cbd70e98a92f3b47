import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { cidrList } from '../src/upstream/address-ranges.ts'
import { compileHostPatterns } from '../src/upstream/host-names.ts'

/**
 * The validators of config/schema.ts. A parser gets the variable's effective text (its
 * value, or the schema's default when unset or empty) and its name, and returns the
 * value or throws a ConfigError naming the variable, what was expected and what was given.
 */
export type Parser<T> = (raw: string, name: string) => T

export class ConfigError extends Error {
  constructor (variable: string, expected: string, given: string) {
    super(`${variable}: expected ${expected}, got ${JSON.stringify(given)}`)
    this.name = 'ConfigError'
  }
}

export function integer (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> {
  return (raw, name) => {
    const value = Number(raw)
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(name, `an integer between ${min} and ${max}`, raw)
    }
    return value
  }
}

export const boolean: Parser<boolean> = (raw, name) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true
  if (/^(0|false|no|off)$/i.test(raw)) return false
  throw new ConfigError(name, 'true or false', raw)
}

export function oneOf (allowed: string[]): Parser<string> {
  return (raw, name) => {
    if (!allowed.includes(raw)) throw new ConfigError(name, `one of ${allowed.join(', ')}`, raw)
    return raw
  }
}

/** Any text, taken as it is (the PM2 app name). */
export const text: Parser<string> = (raw) => raw

export const fieldName: Parser<string> = (raw, name) => {
  // RFC 9110 §5.1: a field name is a token; Cache-Control itself cannot be a target.
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(raw) || /^(cache-control|cdn-cache-control)$/i.test(raw)) {
    throw new ConfigError(name, 'an HTTP field name (a token) other than Cache-Control and CDN-Cache-Control', raw)
  }
  return raw
}

export const storeUri: Parser<string> = (raw, name) => {
  if (raw === 'memory://' || /^sqlite:\/\/.+/.test(raw) || redisUri(raw)) return raw
  // A Redis password is not echoed.
  throw new ConfigError(name, 'sqlite://<path>, memory:// or redis[s]://[user:password@]host[:port][/db]', raw.replace(/^(rediss?:\/\/[^:@/]*):[^@/]*@/, '$1:<hidden>@'))
}

/** redis://[user:password@]host[:port][/db] or rediss:// (TLS), as @redis/client reads it. */
function redisUri (raw: string): boolean {
  if (!/^rediss?:\/\//.test(raw)) return false
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return false
  }
  return url.hostname !== '' && /^(\/\d{0,2})?$/.test(url.pathname) && url.search === '' && url.hash === ''
}

/** A number of processes, or "max" for one per core. */
export const workers: Parser<number> = (raw, name) => raw === 'max' ? availableParallelism() : integer(1, 1024)(raw, name)

export const host: Parser<string> = (raw, name) => {
  if (/[\s/]/.test(raw)) throw new ConfigError(name, 'an IP address or hostname to listen on', raw)
  return raw
}

function items (raw: string): string[] {
  return raw.split(',').map((item) => item.trim()).filter((item) => item !== '')
}

/** A comma-separated list that `check` accepts (it throws otherwise). */
function checkedList (check: (values: string[]) => unknown, expected: string): Parser<string[]> {
  return (raw, name) => {
    const values = items(raw)
    try {
      check(values)
    } catch {
      throw new ConfigError(name, expected, raw)
    }
    return values
  }
}

export const hostPatterns = checkedList(compileHostPatterns, 'a comma-separated list of host names and *.suffix wildcards')

export const cidrs = checkedList(cidrList, 'a comma-separated list of CIDR ranges such as 10.0.0.0/8')

/** Ports, or '*' for any. */
export const ports: Parser<number[] | '*'> = (raw, name) => {
  if (raw.trim() === '*') return '*'
  const values = items(raw)
  if (values.length === 0 || !values.every((p) => /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535)) {
    throw new ConfigError(name, 'a comma-separated list of ports (1-65535) or *', raw)
  }
  return values.map(Number)
}

/** One user:password pair (never echoed in an error), or none when empty. */
export const userPassword: Parser<string[]> = (raw, name) => {
  if (raw === '') return []
  if (!/^[^:\s]+:.+$/.test(raw)) throw new ConfigError(name, 'user:password', '<hidden>')
  return [raw]
}

/** A Bearer token (RFC 6750 §2.1 b64token), or empty for none; a bad one is not echoed. */
export const bearerToken: Parser<string> = (raw, name) => {
  if (raw !== '' && !/^[A-Za-z0-9\-._~+/]+=*$/.test(raw)) throw new ConfigError(name, 'a token of letters, digits and -._~+/ (RFC 6750), or empty', '<hidden>')
  return raw
}

/** The user:scrypt$salt$hash lines of a file (npm run hash-password), or none when empty. */
export const scryptFile: Parser<string[]> = (file, name) => {
  if (file === '') return []
  let content: string
  try {
    content = readFileSync(file, 'utf8')
  } catch {
    throw new ConfigError(name, 'a readable file of user:scrypt$... lines', file)
  }
  const entries: string[] = []
  for (const line of content.split(/\r?\n/)) {
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    if (!/^[^:\s]+:scrypt\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(trimmed)) throw new ConfigError(name, 'lines of user:scrypt$<salt>$<hash> (npm run hash-password)', file)
    entries.push(trimmed)
  }
  return entries
}

/** A size as PM2's max_memory_restart takes it: bytes, or a number with K, M or G. */
export const pm2Size: Parser<string> = (raw, name) => {
  if (!/^\d+[KMG]?$/.test(raw)) throw new ConfigError(name, 'a size such as 1G, 512M or 300000K', raw)
  return raw
}

/**
 * Host names as the WHATWG URL host parser reads them (every encoding of an IP address,
 * IDN, trailing dot), and the host patterns of the allow/deny lists. Pure.
 */
import { isIPv6 } from 'node:net'
import { domainToASCII } from 'node:url'
import { ipv6Bytes, stripZone, v4At } from './address-ranges.ts'

export type HostInfo =
  | { kind: 'ipv4', address: string }
  | { kind: 'ipv6', address: string }
  | { kind: 'name', name: string }
  | { kind: 'invalid' }

/** WHATWG "IPv4 number parser": decimal, 0x hex, leading-0 octal. */
function ipv4Number (part: string): number | undefined {
  if (part === '') return undefined
  let radix = 10
  let digits = part
  if (digits.length >= 2 && (digits.startsWith('0x') || digits.startsWith('0X'))) {
    radix = 16
    digits = digits.slice(2)
  } else if (digits.length >= 2 && digits.startsWith('0')) {
    radix = 8
    digits = digits.slice(1)
  }
  if (digits === '') return 0
  const pattern = radix === 16 ? /^[0-9a-f]+$/i : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/
  if (!pattern.test(digits)) return undefined
  return parseInt(digits, radix) // huge values lose precision but stay out of range
}

/** WHATWG "ends in a number" checker: such hosts must parse as IPv4 or are invalid. */
function endsInNumber (parts: string[]): boolean {
  const last = parts[parts.length - 1]
  return /^[0-9]+$/.test(last) || ipv4Number(last) !== undefined
}

/** WHATWG "IPv4 parser": 1 to 4 parts, the last one fills the remaining bytes. */
function parseIPv4 (parts: string[]): string | undefined {
  if (parts.length > 4) return undefined
  const numbers: number[] = []
  for (const part of parts) {
    const n = ipv4Number(part)
    if (n === undefined) return undefined
    numbers.push(n)
  }
  const last = numbers.pop() as number
  if (numbers.some((n) => n > 255)) return undefined
  if (last >= 256 ** (4 - numbers.length)) return undefined
  let value = last
  numbers.forEach((n, i) => { value += n * 256 ** (3 - i) })
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join('.')
}

// WHATWG forbidden domain code points (C0 controls, space, # % / : < > ? @ [ \ ] ^ | DEL).
// eslint-disable-next-line no-control-regex
const FORBIDDEN_DOMAIN = /[\u0000-\u0020#%/:<>?@[\\\]^|\u007f]/

function canonicalIPv6 (ip: string): string {
  // ip is validated by isIPv6, so it cannot inject anything into the URL.
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
}

/**
 * Classifies a URL host (as in `url.hostname`, or raw text from a config file):
 * IPv4 in any WHATWG-accepted encoding (2130706433, 0x7f000001, 0177.0.0.1, 127.1,
 * 0x7f.1, full-width digits) becomes dotted quad; IPv6 (with or without brackets,
 * zone dropped) becomes its RFC 5952 form, and IPv4-mapped IPv6 (::ffff:a.b.c.d)
 * becomes the plain IPv4 it is; names become lowercase ASCII (punycode) without
 * the trailing dot. Hosts that the URL parser would reject are 'invalid'.
 */
export function classifyHost (host: string): HostInfo {
  if (host.startsWith('[') || host.includes(':')) {
    const bracketed = host.startsWith('[')
    if (bracketed && !host.endsWith(']')) return { kind: 'invalid' }
    const ip = stripZone(bracketed ? host.slice(1, -1) : host)
    if (!isIPv6(ip)) return { kind: 'invalid' }
    const canonical = canonicalIPv6(ip)
    if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(canonical)) {
      return { kind: 'ipv4', address: v4At(ipv6Bytes(canonical), 12) }
    }
    return { kind: 'ipv6', address: canonical }
  }
  // url.domainToASCII parses like a URL host ("a/b" -> "a", "%41" -> "A"): refuse
  // what a hostname cannot contain before calling it.
  if (FORBIDDEN_DOMAIN.test(host)) return { kind: 'invalid' }
  // IDNA mapping first, as the URL parser does: "１２７.０.０.１" and "127。0。0。1" are IPv4.
  const ascii = domainToASCII(host)
  if (ascii === '') return { kind: 'invalid' }
  const parts = ascii.split('.')
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop()
  if (endsInNumber(parts)) {
    const address = parseIPv4(parts)
    return address === undefined ? { kind: 'invalid' } : { kind: 'ipv4', address }
  }
  return { kind: 'name', name: parts.join('.') }
}

/**
 * The canonical form of a host: the IP address for any encoding of one (without
 * brackets), otherwise the name lowercased, punycoded, without trailing dot.
 * A host that is not valid is returned unchanged.
 */
export function normalizeHost (host: string): string {
  const info = classifyHost(host)
  switch (info.kind) {
    case 'ipv4':
    case 'ipv6': return info.address
    case 'name': return info.name
    default: return host
  }
}

// ---------------------------------------------------------------------------
// Host allow/deny lists

/**
 * Compiles host patterns for allow/deny lists. Each pattern is one of:
 *   - `example.com`   exactly that name (case-insensitive, trailing dot and IDN normalized)
 *   - `*.example.com` any name strictly below example.com, at any depth
 *                     (a.example.com, a.b.example.com) but NOT example.com itself:
 *                     list both to cover the apex. Same idea as a TLS wildcard,
 *                     minus the single-label limit.
 *   - `*`             every host
 *   - an IP address in any encoding, matched exactly against the normalized host
 *     (`127.0.0.1` matches `0x7f000001`); wildcards never match IP hosts.
 * Throws TypeError on anything else, so call it when loading the configuration.
 */
export function compileHostPatterns (patterns: readonly string[]): (host: string) => boolean {
  const exact = new Set<string>()
  const suffixes: string[] = []
  let any = false
  for (const pattern of patterns) {
    if (pattern === '*') { any = true; continue }
    const wildcard = pattern.startsWith('*.')
    const body = wildcard ? pattern.slice(2) : pattern
    const info = body.includes('*') ? { kind: 'invalid' as const } : classifyHost(body)
    const emptyLabel = info.kind === 'name' && info.name.split('.').includes('')
    if (info.kind === 'invalid' || emptyLabel || (wildcard && info.kind !== 'name')) {
      throw new TypeError(`invalid host pattern ${JSON.stringify(pattern)}`)
    }
    const value = info.kind === 'name' ? info.name : info.address
    if (wildcard) suffixes.push('.' + value)
    else exact.add(value)
  }
  return (host: string): boolean => {
    const info = classifyHost(host)
    if (info.kind === 'invalid') return false
    if (any) return true
    if (info.kind !== 'name') return exact.has(info.address)
    return exact.has(info.name) || suffixes.some((suffix) => info.name.endsWith(suffix))
  }
}

/**
 * Refuses upstream connections to loopback, private, link-local and other
 * special-purpose addresses (SSRF protection).
 *
 * The decision is taken on the address actually connected to, not on the name in
 * the URL: `guardedLookup()` is handed to net.connect/tls.connect (through undici's
 * `connect: { lookup }`), judges every address the name resolves to, and hands the
 * socket only addresses it has judged, so DNS rebinding between a check and the
 * connect is impossible (there is no second resolution).
 *
 * net.connect skips `lookup` when the host is already an IP literal
 * (net.isIP(host) !== 0), so literals must be judged separately: call
 * `checkLiteral(url.hostname)` before connecting, or use `guardedConnector()`,
 * an undici connector that does both.
 */
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net'
import type { LookupFunction } from 'node:net'
import { promises as dnsPromises } from 'node:dns'
import type { LookupAddress, LookupOptions } from 'node:dns'
import { domainToASCII } from 'node:url'
import { buildConnector } from 'undici'

export type Rule =
  | 'this-network' // 0.0.0.0/8
  | 'private-rfc1918' // 10/8, 172.16/12, 192.168/16
  | 'cgnat' // 100.64/10
  | 'loopback' // 127/8, ::1
  | 'link-local' // 169.254/16, fe80::/10
  | 'multicast' // 224/4, ff00::/8
  | 'broadcast' // 255.255.255.255
  | 'reserved' // 240/4, 192.0.0/24, 192.88.99/24, IPv6 outside 2000::/3, ORCHID
  | 'documentation' // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20
  | 'benchmarking' // 198.18/15, 2001:2::/48
  | 'unspecified' // ::
  | 'ipv6-ula' // fc00::/7
  | 'ipv6-site-local' // fec0::/10
  | 'teredo' // 2001::/32
  | 'invalid' // not an IP address / not a valid host

/** How an IPv4 address was carried inside the IPv6 address that was judged. */
export type Embedding = 'ipv4-mapped' | 'ipv4-compatible' | 'nat64' | '6to4'

export type Refusal = { allowed: false, rule: Rule, via?: Embedding }
export type Judgement = { allowed: true } | Refusal

const ALLOWED: Judgement = Object.freeze({ allowed: true })

type Range = [rule: Rule, network: string, prefix: number]

// Checked in order: the first match names the rule.
const IPV4_RANGES: Range[] = [
  ['this-network', '0.0.0.0', 8], // RFC 1122 §3.2.1.3 (0.0.0.0 reaches this host on Linux)
  ['private-rfc1918', '10.0.0.0', 8], // RFC 1918
  ['cgnat', '100.64.0.0', 10], // RFC 6598 shared address space
  ['loopback', '127.0.0.0', 8], // RFC 1122 §3.2.1.3
  ['link-local', '169.254.0.0', 16], // RFC 3927 (incl. 169.254.169.254 cloud metadata)
  ['private-rfc1918', '172.16.0.0', 12], // RFC 1918
  ['reserved', '192.0.0.0', 24], // RFC 6890 IETF protocol assignments
  ['documentation', '192.0.2.0', 24], // RFC 5737 TEST-NET-1
  ['reserved', '192.88.99.0', 24], // RFC 7526 deprecated 6to4 relay anycast
  ['private-rfc1918', '192.168.0.0', 16], // RFC 1918
  ['benchmarking', '198.18.0.0', 15], // RFC 2544
  ['documentation', '198.51.100.0', 24], // RFC 5737 TEST-NET-2
  ['documentation', '203.0.113.0', 24], // RFC 5737 TEST-NET-3
  ['multicast', '224.0.0.0', 4], // RFC 5771
  ['broadcast', '255.255.255.255', 32], // RFC 919 limited broadcast (before 240/4)
  ['reserved', '240.0.0.0', 4] // RFC 1112 §4 class E
]

// ::, ::1, ::ffff:0:0/96, ::/96, 64:ff9b::/96 and 2002::/16 are handled in judgeIPv6.
const IPV6_RANGES: Range[] = [
  ['reserved', '64:ff9b:1::', 48], // RFC 8215 local-use NAT64 (embedding not knowable)
  ['reserved', '100::', 64], // RFC 6666 discard-only
  ['teredo', '2001::', 32], // RFC 4380 tunnel, client address obfuscated
  ['benchmarking', '2001:2::', 48], // RFC 5180
  ['reserved', '2001:10::', 28], // RFC 4843 ORCHID (deprecated)
  ['reserved', '2001:20::', 28], // RFC 7343 ORCHIDv2
  ['documentation', '2001:db8::', 32], // RFC 3849
  ['documentation', '3fff::', 20], // RFC 9637
  ['ipv6-ula', 'fc00::', 7], // RFC 4193 unique local
  ['link-local', 'fe80::', 10], // RFC 4291 §2.5.6
  ['ipv6-site-local', 'fec0::', 10], // RFC 3879 deprecated site-local
  ['multicast', 'ff00::', 8] // RFC 4291 §2.7
]

function compile (ranges: Range[], family: 'ipv4' | 'ipv6'): Array<{ rule: Rule, list: BlockList }> {
  return ranges.map(([rule, network, prefix]) => {
    const list = new BlockList()
    list.addSubnet(network, prefix, family)
    return { rule, list }
  })
}

const IPV4_RULES = compile(IPV4_RANGES, 'ipv4')
const IPV6_RULES = compile(IPV6_RANGES, 'ipv6')
// IANA allocates global unicast from 2000::/3 only (RFC 4291 §2.4); the rest is reserved.
const GLOBAL_UNICAST = compile([['reserved', '2000::', 3]], 'ipv6')[0].list

function judgeIPv4 (ip: string): Judgement {
  for (const { rule, list } of IPV4_RULES) {
    if (list.check(ip, 'ipv4')) return { allowed: false, rule }
  }
  return ALLOWED
}

/** The 16 bytes of a valid (net.isIPv6) address without zone. */
function ipv6Bytes (ip: string): Uint8Array {
  let text = ip
  const groups: number[] = []
  const lastColon = text.lastIndexOf(':')
  const tail = text.slice(lastColon + 1)
  let dotted: number[] = []
  if (tail.includes('.')) {
    dotted = tail.split('.').map(Number)
    text = text.slice(0, lastColon + 1) + '0:0' // placeholder, overwritten below
  }
  const [head, rest] = text.split('::') as [string, string | undefined]
  const headGroups = head === '' ? [] : head.split(':')
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':')
  const fill = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length
  for (const g of headGroups) groups.push(parseInt(g, 16))
  for (let i = 0; i < fill; i++) groups.push(0)
  for (const g of restGroups) groups.push(parseInt(g, 16))
  const bytes = new Uint8Array(16)
  groups.forEach((g, i) => { bytes[2 * i] = g >> 8; bytes[2 * i + 1] = g & 0xff })
  if (dotted.length === 4) bytes.set(dotted, 12)
  return bytes
}

function v4At (bytes: Uint8Array, offset: number): string {
  return Array.from(bytes.subarray(offset, offset + 4)).join('.')
}

function zeros (bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false
  return true
}

function embedded (bytes: Uint8Array): { via: Embedding, ipv4: string } | undefined {
  // RFC 4291 §2.5.5.2 IPv4-mapped ::ffff:0:0/96
  if (zeros(bytes, 0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return { via: 'ipv4-mapped', ipv4: v4At(bytes, 12) }
  // RFC 4291 §2.5.5.1 IPv4-compatible ::/96 (deprecated; :: and ::1 handled before)
  if (zeros(bytes, 0, 12)) return { via: 'ipv4-compatible', ipv4: v4At(bytes, 12) }
  // RFC 6052 §2.1 well-known NAT64 prefix 64:ff9b::/96
  if (bytes[0] === 0 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeros(bytes, 4, 12)) {
    return { via: 'nat64', ipv4: v4At(bytes, 12) }
  }
  // RFC 3056 §2 6to4 2002:V4ADDR::/48
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return { via: '6to4', ipv4: v4At(bytes, 2) }
  return undefined
}

function judgeIPv6 (ip: string): Judgement {
  const bytes = ipv6Bytes(ip)
  if (zeros(bytes, 0, 16)) return { allowed: false, rule: 'unspecified' } // RFC 4291 §2.5.2
  if (zeros(bytes, 0, 15) && bytes[15] === 1) return { allowed: false, rule: 'loopback' } // RFC 4291 §2.5.3
  const inner = embedded(bytes)
  if (inner !== undefined) {
    const verdict = judgeIPv4(inner.ipv4)
    return verdict.allowed ? verdict : { allowed: false, rule: verdict.rule, via: inner.via }
  }
  for (const { rule, list } of IPV6_RULES) {
    if (list.check(ip, 'ipv6')) return { allowed: false, rule }
  }
  if (!GLOBAL_UNICAST.check(ip, 'ipv6')) return { allowed: false, rule: 'reserved' }
  return ALLOWED
}

function stripZone (ip: string): string {
  const percent = ip.indexOf('%')
  return percent === -1 ? ip : ip.slice(0, percent)
}

/**
 * Judges one IP address in standard text form (what DNS returns: dotted-quad IPv4
 * or IPv6, optionally in brackets or with a %zone). Anything else, including
 * shorthand like "127.1" (use normalizeHost first), is refused as 'invalid'.
 * IPv4 carried in IPv6 (mapped, compatible, NAT64 64:ff9b::/96, 6to4) is judged
 * by the embedded IPv4 address; `via` says how it was embedded.
 */
export function judgeAddress (ip: string): Judgement {
  let text = ip
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1)
  if (isIPv4(text)) return judgeIPv4(text)
  text = stripZone(text)
  if (isIPv6(text)) return judgeIPv6(text.toLowerCase())
  return { allowed: false, rule: 'invalid' }
}

// ---------------------------------------------------------------------------
// Host normalization (WHATWG URL host parser semantics)

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

/** One-off form of compileHostPatterns (compile once when matching many hosts). */
export function hostMatches (host: string, patterns: readonly string[]): boolean {
  return compileHostPatterns(patterns)(host)
}

// ---------------------------------------------------------------------------
// The error, the literal check and the connect hooks

export class UpstreamForbiddenError extends Error {
  readonly code = 'CPX_UPSTREAM_FORBIDDEN'
  readonly statusCode = 403
  readonly host: string
  readonly address: string | undefined
  readonly rule: Rule
  readonly via: Embedding | undefined

  constructor (host: string, address: string | undefined, refusal: Refusal) {
    const shown = address === undefined || address === host ? '' : ` resolves to ${address}, which`
    const range = refusal.via === undefined ? refusal.rule : `${refusal.rule} via ${refusal.via}`
    super(`upstream host ${host}${shown} is in a forbidden address range (${range})`)
    this.name = 'UpstreamForbiddenError'
    this.host = host
    this.address = address
    this.rule = refusal.rule
    this.via = refusal.via
  }
}

export interface GuardOptions {
  /** Turns all address checks off (local development, tests against 127.0.0.1). */
  allowPrivate?: boolean
}

/**
 * Judges a URL host before connecting. IP literals (in any encoding) are judged
 * now, because net.connect does not call `lookup` for them; names are allowed
 * here and judged by guardedLookup once resolved. Invalid hosts are refused.
 */
export function checkLiteral (host: string, options: GuardOptions = {}): Judgement {
  if (options.allowPrivate === true) return ALLOWED
  const info = classifyHost(host)
  switch (info.kind) {
    case 'ipv4':
    case 'ipv6': return judgeAddress(info.address)
    case 'name': return ALLOWED
    default: return { allowed: false, rule: 'invalid' }
  }
}

/** Resolves a name to all its addresses (default: dns.promises.lookup with all: true). */
export type Resolver = (hostname: string, options: { family: 0 | 4 | 6, hints?: number }) => Promise<LookupAddress[]>

export interface LookupGuardOptions extends GuardOptions {
  resolver?: Resolver
  /**
   * When a name resolves to both allowed and refused addresses:
   * 'refuse' (default) refuses the connection, since a public name with a private
   * address is a rebinding/misconfiguration signal and happy eyeballs could pick
   * either; 'filter' connects using only the allowed addresses.
   */
  onMixed?: 'refuse' | 'filter'
}

const defaultResolver: Resolver = async (hostname, { family, hints }) =>
  await dnsPromises.lookup(hostname, { all: true, family, ...(hints === undefined ? {} : { hints }) })

function familyOf (value: LookupOptions['family']): 0 | 4 | 6 {
  if (value === 4 || value === 'IPv4') return 4
  if (value === 6 || value === 'IPv6') return 6
  return 0
}

function notFound (hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
    code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname
  })
}

async function resolveGuarded (hostname: string, options: LookupOptions, guard: LookupGuardOptions): Promise<LookupAddress[]> {
  const family = familyOf(options.family)
  const info = classifyHost(hostname)
  let addresses: LookupAddress[]
  if (info.kind === 'ipv4' || info.kind === 'ipv6') {
    addresses = [{ address: info.address, family: info.kind === 'ipv4' ? 4 : 6 }]
  } else if (info.kind === 'invalid' && guard.allowPrivate !== true) {
    throw new UpstreamForbiddenError(hostname, undefined, { allowed: false, rule: 'invalid' })
  } else {
    const resolver = guard.resolver ?? defaultResolver
    addresses = await resolver(hostname, { family, hints: options.hints })
  }
  // Recompute each family from the address itself; honour a requested family.
  addresses = addresses.map(({ address }) => ({ address, family: isIP(address) }))
  if (family !== 0) addresses = addresses.filter((a) => a.family === family)
  if (addresses.length === 0) throw notFound(hostname)
  if (guard.allowPrivate === true) return addresses

  const allowed: LookupAddress[] = []
  let firstRefusal: { address: string, refusal: Refusal } | undefined
  for (const entry of addresses) {
    const verdict = judgeAddress(entry.address)
    if (verdict.allowed) allowed.push(entry)
    else firstRefusal ??= { address: entry.address, refusal: verdict }
  }
  if (firstRefusal !== undefined && (allowed.length === 0 || guard.onMixed !== 'filter')) {
    throw new UpstreamForbiddenError(hostname, firstRefusal.address, firstRefusal.refusal)
  }
  return allowed
}

/**
 * A dns.lookup-compatible function for net.connect/tls.connect (undici:
 * `new Agent({ connect: { lookup: guardedLookup() } })`). It resolves the name,
 * judges every address, and calls back either with the judged addresses (an array
 * when `options.all`, as Node 20's autoSelectFamily asks, else the first one) or
 * with an UpstreamForbiddenError (`code: 'CPX_UPSTREAM_FORBIDDEN'`, `rule`).
 * Resolver errors (ENOTFOUND...) are passed through unchanged.
 */
export function guardedLookup (guard: LookupGuardOptions = {}): LookupFunction {
  return (hostname, options, callback) => {
    // dns.lookup also allows (hostname, callback) and a numeric family.
    const opts: LookupOptions = typeof options === 'object' && options !== null
      ? options
      : { family: typeof options === 'number' ? options : undefined }
    const cb = (typeof options === 'function' ? options : callback) as Parameters<LookupFunction>[2]
    resolveGuarded(hostname, opts, guard).then(
      // nextTick: an exception thrown by the callback must not re-enter the promise chain
      (addresses) => {
        if (opts.all === true) process.nextTick(cb, null, addresses)
        else process.nextTick(cb, null, addresses[0].address, addresses[0].family)
      },
      (error: NodeJS.ErrnoException) => { process.nextTick(cb, error, '') }
    )
  }
}

export interface ConnectorGuardOptions extends LookupGuardOptions {
  /**
   * Options for undici's buildConnector (tls options, timeout, autoSelectFamily...).
   * An Agent given a connector function ignores its own connectTimeout/tls options:
   * pass them here instead.
   */
  connect?: buildConnector.BuildOptions
}

/**
 * An undici connector (`new Agent({ connect: guardedConnector() })`) that refuses
 * forbidden IP-literal hosts before opening a socket and uses guardedLookup for
 * names, so neither path can reach a forbidden address.
 */
export function guardedConnector (guard: ConnectorGuardOptions = {}): buildConnector.connector {
  const { connect, ...lookupGuard } = guard
  const inner = buildConnector({ ...connect, lookup: guardedLookup(lookupGuard) } as buildConnector.BuildOptions)
  return (options, callback) => {
    const verdict = checkLiteral(options.hostname, guard)
    if (!verdict.allowed) {
      const error = new UpstreamForbiddenError(options.hostname, undefined, verdict)
      process.nextTick(callback, error, null)
      return
    }
    inner(options, callback)
  }
}

/** A BlockList of CIDR ranges (`10.0.0.0/8`, `::1/128`, a bare address); throws RangeError on a bad one. */
export function cidrList (cidrs: readonly string[]): BlockList {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [address, prefix, extra] = cidr.split('/')
    const family = isIP(address)
    const max = family === 6 ? 128 : 32
    const bits = prefix === undefined ? max : Number(prefix)
    if (family === 0 || extra !== undefined || !/^\d*$/.test(prefix ?? '') || !Number.isInteger(bits) || bits < 0 || bits > max) {
      throw new RangeError(`not a CIDR range: ${JSON.stringify(cidr)}`)
    }
    list.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4')
  }
  return list
}

/**
 * Special-purpose address ranges (loopback, private, link-local, documentation...): the
 * judgement on one IP address that the upstream guard (address-guard.ts) and the client
 * access list both rely on, and CIDR lists from the configuration. Pure.
 */
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net'

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

export const ALLOWED: Judgement = Object.freeze({ allowed: true })

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
export function ipv6Bytes (ip: string): Uint8Array {
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

export function v4At (bytes: Uint8Array, offset: number): string {
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

export function stripZone (ip: string): string {
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

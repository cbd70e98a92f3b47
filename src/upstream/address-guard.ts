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
import { isIP, type LookupFunction } from 'node:net'
import { promises as dnsPromises } from 'node:dns'
import type { LookupAddress, LookupOptions } from 'node:dns'
import { buildConnector } from 'undici'
import { ALLOWED, judgeAddress, type Embedding, type Judgement, type Refusal, type Rule } from './address-ranges.ts'
import { classifyHost } from './host-names.ts'

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

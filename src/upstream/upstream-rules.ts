import { networkInterfaces } from 'node:os'
import { compileHostPatterns, normalizeHost } from './host-names.ts'
import { checkLiteral } from './address-guard.ts'

export interface UpstreamRules {
  allowPrivate: boolean
  allow: string[]
  deny: string[]
  ports: number[] | '*'
  /** The proxy's own listening address, to refuse requests to itself. */
  listenHost: string
  listenPort: number
  /** The variable that sets `ports`, named in refusals (default UPSTREAM_PORTS). */
  portsVariable?: string
}

export interface Refusal {
  status: 403 | 508
  rule: string
  message: string
}

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback'])

function ownAddresses (listenHost: string): Set<string> {
  const own = new Set<string>([normalizeHost(listenHost), '0.0.0.0', '::'])
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) own.add(normalizeHost(info.address))
  }
  return own
}

/**
 * Judges an upstream URL before anything is sent: the port list, the deny and allow host
 * lists, IP literals in forbidden ranges (names are judged on their resolved address at
 * connect time, see address-guard.ts) and requests to the proxy itself.
 */
export function compileUpstreamRules (rules: UpstreamRules): (url: URL) => Refusal | undefined {
  const denied = compileHostPatterns(rules.deny)
  const allowed = rules.allow.length === 0 ? () => true : compileHostPatterns(rules.allow)
  const own = ownAddresses(rules.listenHost)
  return (url) => {
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
    const host = normalizeHost(url.hostname)
    if (port === rules.listenPort && (own.has(host) || LOOPBACK_NAMES.has(host) || /^127\./.test(host))) {
      return { status: 508, rule: 'self', message: `${url.host} is this proxy's own address` }
    }
    if (rules.ports !== '*' && !rules.ports.includes(port)) {
      return { status: 403, rule: 'port', message: `upstream port ${port} is not allowed (${rules.portsVariable ?? 'UPSTREAM_PORTS'})` }
    }
    if (denied(host)) return { status: 403, rule: 'deny-list', message: `upstream host ${host} is denied (UPSTREAM_DENY)` }
    if (!allowed(host)) return { status: 403, rule: 'allow-list', message: `upstream host ${host} is not allowed (UPSTREAM_ALLOW)` }
    const verdict = checkLiteral(url.hostname, { allowPrivate: rules.allowPrivate })
    if (!verdict.allowed) {
      return { status: 403, rule: verdict.rule, message: `upstream address ${host} is in a forbidden range (${verdict.rule}${verdict.via === undefined ? '' : ` via ${verdict.via}`})` }
    }
    return undefined
  }
}

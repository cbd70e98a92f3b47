import { parseUpstreamUrl } from '../upstream/upstream-url.ts'

/**
 * The proxy's address as the client reached it, from the Host header: `host:port`
 * (IPv6 in brackets; port 80 when the header names none). Undefined when the header is
 * missing or not a valid host[:port], so nothing from it can be injected into the script.
 */
export function proxyAddress (hostHeader: string | undefined): string | undefined {
  if (hostHeader === undefined || hostHeader === '' || /[/?#@\\\s]/.test(hostHeader)) return undefined
  try {
    const url = parseUpstreamUrl(`/${hostHeader}/`)
    return `${url.hostname}:${url.port === '' ? 80 : url.port}`
  } catch {
    return undefined
  }
}

export interface PacOptions {
  /** host:port of the proxy, as returned by proxyAddress. */
  proxy: string
  /** ALLOW_PRIVATE_UPSTREAMS: when off, private IP literals go DIRECT (the proxy would refuse them). */
  allowPrivate: boolean
}

/**
 * A proxy auto-config script (Netscape PAC). http, https and wss go through the proxy
 * (https and wss as CONNECT tunnels); DIRECT: the proxy itself, plain host names (no
 * dot: intranet names the proxy cannot resolve), loopback (the browser's own machine,
 * not the proxy's), private IP literals unless the proxy may reach them, other schemes.
 * `; DIRECT` after the proxy lets the browser keep working while the proxy is down.
 */
export function pacScript (options: PacOptions): string {
  const proxyHost = options.proxy.slice(0, options.proxy.lastIndexOf(':')).replace(/^\[|\]$/g, '').toLowerCase()
  const privateCheck = options.allowPrivate
    ? ''
    : `  // Private address literals: this proxy refuses them (ALLOW_PRIVATE_UPSTREAMS is off).
  if (/^(10\\.|192\\.168\\.|169\\.254\\.|172\\.(1[6-9]|2[0-9]|3[01])\\.)/.test(host) || /^\\[?(f[cd]|fe[89ab])[0-9a-f]*:/.test(host)) return "DIRECT";
`
  return `// caching-proxy: point the browser (or the OS) at this file once.
// Generated for ${options.proxy}; see the README, "Forward proxy and HTTPS".
function FindProxyForURL(url, host) {
  host = host.toLowerCase();
  if (host === ${JSON.stringify(proxyHost)} || host === ${JSON.stringify(`[${proxyHost}]`)}) return "DIRECT";
  if (isPlainHostName(host) || host === "localhost" || dnsDomainIs(host, ".localhost")) return "DIRECT";
  if (/^127\\./.test(host) || host === "::1" || host === "[::1]") return "DIRECT";
${privateCheck}  if (/^(https?|wss):/i.test(url)) return ${JSON.stringify(`PROXY ${options.proxy}; DIRECT`)};
  return "DIRECT";
}
`
}

import { STATUS_CODES } from 'node:http'
import { parseUpstreamUrl, UpstreamUrlError } from './upstream-url.ts'

/** Where a CONNECT request asks to go: `host` as the URL parser spells it (IPv6 in brackets). */
export interface ConnectTarget {
  /** host:port as it will be logged and judged (lower case, default port kept). */
  authority: string
  /** The host name or IP literal; IPv6 without brackets, ready for net.connect. */
  host: string
  port: number
  /** The same target as a URL, for the upstream rules shared with plain requests. */
  url: URL
}

/**
 * Parses a CONNECT request target. RFC 9110 §9.3.6: it is the authority-form
 * `host:port`, and the port is required. Throws UpstreamUrlError when malformed.
 */
export function parseConnectTarget (target: string): ConnectTarget {
  if (!/^(\[[0-9A-Fa-f:.]+\]|[^[\]/?#@\s:]+):\d{1,5}$/.test(target)) {
    throw new UpstreamUrlError(`a CONNECT target must be host:port, got ${JSON.stringify(target.slice(0, 100))}`)
  }
  const url = parseUpstreamUrl(`/https://${target}/`)
  const port = url.port === '' ? 443 : Number(url.port)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  return { authority: `${url.hostname}:${port}`, host, port, url }
}

/**
 * A complete HTTP/1.1 response for a raw socket (CONNECT answers are not routed through
 * Fastify). The body is a short JSON object like the proxy's other errors.
 */
export function rawResponse (status: number, message: string, headers: Record<string, string> = {}): string {
  const reason = STATUS_CODES[status] ?? 'Error'
  const body = JSON.stringify({ error: reason, message }) + '\n'
  const lines = [`HTTP/1.1 ${status} ${reason}`, 'Connection: close', 'Content-Type: application/json; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`]
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value.replace(/[\r\n]/g, ' ')}`)
  return lines.join('\r\n') + '\r\n\r\n' + body
}

/** The answer that opens a tunnel: everything after it belongs to the two ends. */
export const TUNNEL_ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n'

/**
 * Turns the path of a proxy request into the upstream URL it names:
 *   /example.com/a?b          -> http://example.com/a?b
 *   /example.com:8080/a       -> http://example.com:8080/a
 *   /https://example.com/a    -> https://example.com/a
 *   /[::1]:8080/              -> http://[::1]:8080/
 */

export class UpstreamUrlError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UpstreamUrlError'
  }
}

const SCHEME = /^(https?):\/\/?/i
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i
const IPV6 = /^\[[0-9a-f:.]+\]$/i
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f\\]/

/**
 * Parses `path` (the request target, starting with "/") into an upstream URL.
 * Throws UpstreamUrlError when the host, port or URL is malformed.
 */
export function parseUpstreamUrl (path: string): URL {
  let rest = path.startsWith('/') ? path.slice(1) : path
  let scheme = 'http'
  const explicit = SCHEME.exec(rest)
  if (explicit !== null) {
    scheme = explicit[1].toLowerCase()
    rest = rest.slice(explicit[0].length)
  }
  const end = rest.search(/[/?#]/)
  const authority = end === -1 ? rest : rest.slice(0, end)
  const tail = end === -1 ? '/' : rest.slice(end)
  if (authority === '') throw new UpstreamUrlError('no upstream host in the URL')
  if (FORBIDDEN.test(path)) throw new UpstreamUrlError('control characters or backslashes in the URL')
  if (authority.includes('@')) throw new UpstreamUrlError('credentials in the upstream URL are not allowed')

  const { hostname, port } = splitAuthority(authority)
  if (!IPV6.test(hostname) && !HOSTNAME.test(hostname)) {
    throw new UpstreamUrlError(`malformed upstream host ${JSON.stringify(hostname)}`)
  }
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    throw new UpstreamUrlError(`malformed upstream port ${JSON.stringify(port)}`)
  }

  let url: URL
  try {
    url = new URL(`${scheme}://${authority}${tail.startsWith('/') ? '' : '/'}${tail}`)
  } catch {
    throw new UpstreamUrlError(`malformed upstream URL ${JSON.stringify(authority + tail)}`)
  }
  url.hash = ''
  return url
}

function splitAuthority (authority: string): { hostname: string, port: string | undefined } {
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']')
    if (close === -1) throw new UpstreamUrlError('unterminated IPv6 literal in the upstream host')
    const after = authority.slice(close + 1)
    if (after !== '' && !after.startsWith(':')) throw new UpstreamUrlError(`malformed upstream host ${JSON.stringify(authority)}`)
    return { hostname: authority.slice(0, close + 1), port: after === '' ? undefined : after.slice(1) }
  }
  const colon = authority.lastIndexOf(':')
  if (colon === -1) return { hostname: authority, port: undefined }
  return { hostname: authority.slice(0, colon), port: authority.slice(colon + 1) }
}

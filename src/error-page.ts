import Negotiator from 'negotiator'

/** The body of every error the proxy itself produces (JSON form). */
export interface ErrorBody {
  error: string
  message: string
  code?: string
  upstream?: string
  rule?: string
}

/**
 * True when the client prefers HTML to JSON (RFC 9110 §12.5.1, q-values): browsers,
 * which send `text/html` first. `*\/*`, no Accept, and ties go to JSON, so curl and
 * API clients keep the JSON body.
 */
export function prefersHtml (accept: string | string[] | undefined): boolean {
  if (accept === undefined) return false
  const value = Array.isArray(accept) ? accept.join(', ') : accept
  return new Negotiator({ headers: { accept: value } }).mediaType(['application/json', 'text/html']) === 'text/html'
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c])
}

const RULE_HINTS: Record<string, string> = {
  port: 'Only some upstream ports are allowed (UPSTREAM_PORTS, CONNECT_PORTS for HTTPS tunnels). Use a standard port, or ask the operator to allow this one.',
  'allow-list': 'This proxy only fetches from the hosts listed in UPSTREAM_ALLOW. Check the host name, or ask the operator to add it.',
  'deny-list': 'This host is on the proxy\'s deny list (UPSTREAM_DENY).',
  invalid: 'The host is not a valid host name or IP address. Check the address for typos.',
  self: 'The address is the proxy itself. Put the address of another site after the proxy\'s own.'
}

const PRIVATE_HINT = 'The host is, or resolves to, a loopback, private, link-local or reserved address, which this proxy refuses to reach so that it cannot be used against its own network. For a local development server, the operator can set ALLOW_PRIVATE_UPSTREAMS=true.'

const STATUS_HINTS: Record<number, string> = {
  400: 'The address after the proxy\'s own could not be read as host[:port]/path. Example: /example.com/path?query, or /https://example.com/ for HTTPS.',
  401: 'This proxy requires a user name and password (PROXY_AUTH). Reload the page and enter them.',
  403: 'The proxy refused this request.',
  404: 'The proxy has no page at this address. To fetch a site through it, put the site\'s address after the proxy\'s own: /example.com/',
  405: 'The proxy does not forward this request method.',
  407: 'This proxy requires a user name and password (PROXY_AUTH). Configure them in the browser\'s proxy settings.',
  413: 'The request body is larger than the proxy accepts (MAX_BODY_BYTES).',
  414: 'The address is longer than the proxy accepts (MAX_URL_BYTES).',
  429: 'Too many requests from your address in the last minute (RATE_LIMIT_PER_MINUTE). Wait a moment, then reload.',
  500: 'Something went wrong inside the proxy. Try again; if it persists, the proxy\'s log has the details.',
  502: 'The upstream site could not be reached. Check the host name for typos, that the site is up, and for https:// that its certificate is valid. Then reload.',
  503: 'The proxy or the upstream is temporarily unavailable. Try again in a moment.',
  504: 'The upstream site did not answer in time (UPSTREAM_TIMEOUT_MS). It may be slow or down: try again later.',
  505: 'Use HTTP/1.1.',
  508: 'The request came back to this proxy (a loop). Check that the address is not the proxy itself and that no other proxy sends it back here.'
}

/** What to try next, for a status and (for 403s) the rule that refused. */
export function errorHint (status: number, body: ErrorBody): string {
  if (body.code === 'CPX_CLIENT_FORBIDDEN') return 'Your address is not in the proxy\'s list of clients (ALLOW_CLIENTS). Ask the operator to add it.'
  if (body.code === 'CPX_BAD_UPSTREAM_URL' && /percent-encoding|control|backslash|credentials/i.test(body.message)) return 'Remove the invalid characters from the address and try again.'
  if (body.rule !== undefined) return RULE_HINTS[body.rule] ?? PRIVATE_HINT
  if (status === 403 && body.code === 'CPX_UPSTREAM_FORBIDDEN') return PRIVATE_HINT
  return STATUS_HINTS[status] ?? (status >= 500 ? STATUS_HINTS[500] : 'Check the address and try again.')
}

/** A small, self-contained HTML page for an error: what happened and what to try. */
export function errorPage (status: number, body: ErrorBody): string {
  const details: string[] = []
  if (body.upstream !== undefined) details.push(`<dt>Upstream</dt><dd><code>${escapeHtml(body.upstream)}</code></dd>`)
  if (body.rule !== undefined) details.push(`<dt>Rule</dt><dd><code>${escapeHtml(body.rule)}</code></dd>`)
  if (body.code !== undefined) details.push(`<dt>Code</dt><dd><code>${escapeHtml(body.code)}</code></dd>`)
  const title = `${status} ${escapeHtml(body.error)}`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · caching-proxy</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#222}h1{font-size:1.6em;margin:0 0 .5em}
.what{font-size:1.1em}.try{background:#f4f4f4;border-left:4px solid #888;padding:.6em 1em}dl{color:#555;font-size:.9em}dt{float:left;width:6em;clear:left}dd{margin-left:6em}footer{color:#888;font-size:.8em;margin-top:2em}</style>
</head><body>
<h1>${title}</h1>
<p class="what">${escapeHtml(body.message)}</p>
<p class="try"><strong>What to try:</strong> ${escapeHtml(errorHint(status, body))}</p>
${details.length > 0 ? `<dl>${details.join('')}</dl>\n` : ''}<footer>This page was produced by caching-proxy, not by the site you asked for.</footer>
</body></html>
`
}

/**
 * Per-site cookies in path-prefix mode, where every site shares the proxy's browser origin.
 * Two fences, each enough for cookies the server sets:
 * - path: `Set-Cookie` from upstream X gets `Path=/<X>/...` and no `Domain`, so the browser
 *   sends it only under X's prefix (RFC 6265 §5.1.4 path-match);
 * - name: the cookie name gets X's tag (`cpx<hash>_name`), and on the way up only cookies
 *   carrying the target's tag are forwarded, tag removed. A cookie set by script with
 *   `path=/` (which every prefix path-matches) or left by anything else never reaches an
 *   upstream it was not meant for. The page's own scripts still see the names the site
 *   chose: see cookieShim().
 */

/** Short, cookie-name-safe tag of a site (its proxy prefix): FNV-1a 32 in base 36. */
export function siteTag (prefix: string): string {
  let hash = 0x811c9dc5
  for (let i = 0; i < prefix.length; i++) {
    hash ^= prefix.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return `cpx${hash.toString(36)}_`
}

/** RFC 6265 §5.1.4 default-path of a request path. */
export function defaultPath (requestPath: string): string {
  if (!requestPath.startsWith('/')) return '/'
  const last = requestPath.lastIndexOf('/')
  return last <= 0 ? '/' : requestPath.slice(0, last)
}

function scopedPath (prefix: string, path: string): string {
  return path === '/' ? prefix : prefix + path
}

/**
 * Rewrites one Set-Cookie field value from upstream site `prefix` (answering `requestPath`):
 * name tagged, Path moved under the prefix, Domain dropped (the site is its exact host), and
 * Secure / SameSite=None / Partitioned dropped because the browser reaches this proxy over
 * plain HTTP and every proxied site is same-origin to it. With no prefix (the site has its
 * own browser origin, src/browsing/site-origin.ts) the name and Path stay as they are.
 */
export function rewriteSetCookie (value: string, prefix: string | undefined, requestPath: string): string {
  const parts = value.split(';')
  const pair = parts[0].trim()
  const out = [prefix === undefined ? pair : siteTag(prefix) + pair]
  let path: string | undefined
  for (const raw of parts.slice(1)) {
    const attribute = raw.trim()
    if (attribute === '') continue
    const eq = attribute.indexOf('=')
    const name = (eq === -1 ? attribute : attribute.slice(0, eq)).trim().toLowerCase()
    const attrValue = eq === -1 ? '' : attribute.slice(eq + 1).trim()
    if (name === 'domain' || name === 'secure' || name === 'partitioned') continue
    if (name === 'samesite' && attrValue.toLowerCase() === 'none') continue
    if (name === 'path' && prefix !== undefined) {
      path = attrValue // §5.2.4: the last Path attribute wins
      continue
    }
    out.push(attribute)
  }
  if (prefix === undefined) return out.join('; ')
  const effective = path !== undefined && path.startsWith('/') ? path : defaultPath(requestPath)
  out.push(`Path=${scopedPath(prefix, effective)}`)
  return out.join('; ')
}

/**
 * The Cookie header a request to site `prefix` sends upstream: only the pairs carrying the
 * site's tag, without it; undefined when none is left.
 */
export function filterCookieHeader (value: string, prefix: string): string | undefined {
  const tag = siteTag(prefix)
  const kept: string[] = []
  for (const raw of value.split(';')) {
    const pair = raw.trim()
    if (pair.startsWith(tag)) kept.push(pair.slice(tag.length))
  }
  return kept.length === 0 ? undefined : kept.join('; ')
}

/**
 * A script for the top of each rewritten page: `document.cookie` reads and writes the
 * site's own cookies under the names the site chose, and a script's `path=/...` lands under
 * the site's prefix. Inline, so it needs no route; the page's CSP is dropped on rewritten
 * pages (it names the upstream hosts, not this proxy). Run twice (an HTML fragment whose
 * scripts a page evaluates), it leaves the first wrapper in place.
 */
export function cookieShim (prefix: string): string {
  const tag = JSON.stringify(siteTag(prefix))
  const root = JSON.stringify(prefix)
  return `<script>(function(){var t=${tag},p=${root},P=Document.prototype,d=Object.getOwnPropertyDescriptor(P,"cookie");` +
    'if(!d||!d.get||!d.set||d.get.cpx)return;var g=function(){return d.get.call(this).split("; ").filter(function(c){return c.indexOf(t)===0}).map(function(c){return c.slice(t.length)}).join("; ")};g.cpx=1;' +
    'Object.defineProperty(P,"cookie",{configurable:true,enumerable:true,get:g,' +
    'set:function(v){var a=String(v).split(";"),o=[t+a[0].trim()];for(var i=1;i<a.length;i++){var s=a[i].trim(),e=s.indexOf("="),' +
    'k=(e<0?s:s.slice(0,e)).trim().toLowerCase(),w=e<0?"":s.slice(e+1).trim();if(k==="domain"||k==="secure"||k==="partitioned"||(k==="samesite"&&w.toLowerCase()==="none"))continue;' +
    'if(k==="path"){if(w.charAt(0)==="/")o.push("path="+(w==="/"?p:p+w));continue}if(s)o.push(s)}d.set.call(this,o.join("; "))}})})()</script>'
}

import { escapeHtml } from '../error-page.ts'
import type { Explanation } from './explain.ts'

const STYLE = 'body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}' +
  'h1{font-size:1.4em}code{background:#f4f4f4;padding:0 .2em}table{border-collapse:collapse;margin:.5em 0 1.5em}' +
  'th,td{border:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}th{background:#f8f8f8;font-weight:600}' +
  '.no{color:#a00}.yes{color:#070}'

function row (name: string, value: string): string {
  return `<tr><th>${escapeHtml(name)}</th><td>${value}</td></tr>`
}

/** /_proxy/explain as a page a person reads (a browser asked for text/html). */
export function explainPage (e: Explanation): string {
  const parts: string[] = [`<h1>Explain <code>${escapeHtml(e.url)}</code></h1>`]
  parts.push(e.stored
    ? `<p class="yes">Stored: ${e.variants.length} response${e.variants.length === 1 ? '' : 's'}${e.vary === undefined ? '' : `, varying on <code>${escapeHtml(e.vary.join(', '))}</code>`}.</p>`
    : '<p class="no">Nothing is stored for this URL.</p>')
  e.variants.forEach((v, i) => {
    const selected = Object.entries(v.selectedBy).map(([name, value]) => `<code>${escapeHtml(name)}: ${escapeHtml(value)}</code>`).join('<br>')
    parts.push(`<h2>Response ${i + 1}</h2><table>` +
      (selected === '' ? '' : row('Selected by', selected)) +
      row('Status', String(v.status)) +
      row('Size', `${v.bodyBytes} body bytes (${v.storedBytes} stored)${v.inMemory ? ', also in this worker\'s memory' : ''}`) +
      row('Stored at', escapeHtml(v.storedAt)) +
      row('Age', `${v.ageSeconds} s`) +
      row('Freshness left', `${v.freshnessLeftSeconds} s of ${v.lifetimeSeconds} s`) +
      row('Reuse now', escapeHtml(v.reuse)) +
      row('Decided by', escapeHtml(v.decidedBy)) +
      row('Directives', `<code>${escapeHtml(Object.entries(v.directives).map(([k, d]) => d === true ? k : `${k}=${d}`).join(', ') || '(none)')}</code>`) +
      row('Validators', escapeHtml([v.validators.etag === undefined ? '' : `ETag ${v.validators.etag}`, v.validators.lastModified === undefined ? '' : `Last-Modified ${v.validators.lastModified}`].filter(Boolean).join(', ') || 'none')) +
      '</table>')
  })
  const last = e.last
  if (last === undefined) {
    parts.push('<p>No response for this URL was seen by this worker recently.</p>')
  } else {
    parts.push('<h2>Last response seen by this worker</h2><table>' +
      row('When', escapeHtml(last.time)) +
      row('Request', `${escapeHtml(last.method)} → ${last.status}`) +
      row('Outcome', escapeHtml(last.outcome)) +
      row('Stored', last.stored === undefined ? (last.outcome === 'error' ? 'no response to store' : 'answered from the cache') : last.stored ? '<span class="yes">yes</span>' : '<span class="no">no</span>') +
      (last.reason === undefined ? '' : row('Why not', `<span class="no">${escapeHtml(last.reason)}</span>`)) +
      row('Cache-Status', `<code>${escapeHtml(last.cacheStatus)}</code>`) +
      '</table>')
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Explain · caching-proxy</title><style>${STYLE}</style></head><body>
${parts.join('\n')}
</body></html>
`
}

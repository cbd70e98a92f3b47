/**
 * GET /_proxy/: one static page, no build step. Its script polls /_proxy/stats every 2 s
 * and writes the numbers with textContent (URLs are never parsed as HTML). With ADMIN_TOKEN
 * set, open it as /_proxy/#token=<token> from a client that can send the header for the
 * page itself (the fragment never leaves the browser; the script sends it as a Bearer token).
 */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>caching-proxy · dashboard</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.7em 1.5em;display:flex;justify-content:space-between;align-items:baseline}
header h1{font-size:1.15em;margin:0}header small{color:#aab}
main{padding:1em 1.5em;max-width:80em}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(12em,1fr));gap:.8em;margin-bottom:1em}
.tile{background:#fff;border-radius:6px;padding:.7em 1em;box-shadow:0 1px 2px #0001}
.tile b{display:block;font-size:1.7em;font-weight:600}.tile span{color:#667;font-size:.85em}
section{background:#fff;border-radius:6px;padding:.7em 1em;margin-bottom:1em;box-shadow:0 1px 2px #0001}
h2{font-size:1em;margin:.2em 0 .6em}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .5em;border-bottom:1px solid #eee;font-variant-numeric:tabular-nums}
th{color:#667;font-weight:500}td.url{word-break:break-all}td.n{text-align:right}
#timeline{display:flex;align-items:flex-end;gap:2px;height:80px;border-bottom:1px solid #ccd}
#timeline div{flex:1;background:#e0633b;position:relative;min-height:1px}
#timeline div i{position:absolute;bottom:0;left:0;right:0;background:#2e9e5b}
.legend{color:#667;font-size:.85em}.legend i{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em;vertical-align:-1px}
#status.bad{color:#b00}.empty{color:#889}
</style></head><body>
<header><h1>caching-proxy</h1><small><span id="status">loading…</span> · updated <span id="updated">never</span></small></header>
<main>
<div class="tiles">
 <div class="tile"><span>Hit ratio, last minute</span><b id="hit-ratio-1m">–</b></div>
 <div class="tile"><span>Hit ratio, last 5 minutes</span><b id="hit-ratio-5m">–</b></div>
 <div class="tile"><span>Requests per second (1 min)</span><b id="req-per-sec">–</b></div>
 <div class="tile"><span>Requests since start</span><b id="requests-total">–</b></div>
 <div class="tile"><span>Bytes served from cache</span><b id="bytes-saved">–</b></div>
 <div class="tile"><span>Store fill (MAX_CACHE_BYTES)</span><b id="store-fill">–</b><span id="store-detail"></span></div>
</div>
<section><h2>Last 5 minutes, per 10 s</h2><div id="timeline"></div>
<p class="legend"><i style="background:#2e9e5b"></i>from cache<i style="background:#e0633b"></i>from origin or error</p></section>
<section><h2>Workers</h2><table><thead><tr><th>Worker (pid)</th><th>Uptime</th><th class="n">Requests</th><th class="n">Hit ratio 1 min</th><th class="n">Hit ratio 5 min</th><th class="n">Req/s</th><th class="n">Bytes saved</th><th class="n">Memory tier</th><th>Load</th></tr></thead><tbody id="workers"></tbody></table></section>
<div class="cols">
<section><h2>Top URLs by hits</h2><table><tbody id="top-hits"></tbody></table></section>
<section><h2>Top URLs by misses</h2><table><tbody id="top-misses"></tbody></table></section>
</div>
<section><h2>Recent errors and refusals</h2><table><thead><tr><th>Time</th><th>Kind</th><th>Status</th><th>Code</th><th>URL</th><th>Worker</th></tr></thead><tbody id="recent"></tbody></table></section>
</main>
<script>
(function () {
  var token = (/[#&]token=([^&]+)/.exec(location.hash) || [])[1];
  var headers = token ? { authorization: 'Bearer ' + decodeURIComponent(token) } : {};
  function $(id) { return document.getElementById(id); }
  function pct(r) { return r === null || r === undefined ? '–' : (r * 100).toFixed(1) + ' %'; }
  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
  }
  function duration(s) { return s < 120 ? s + ' s' : s < 7200 ? Math.round(s / 60) + ' min' : Math.round(s / 3600) + ' h'; }
  function rows(id, list, cells) {
    var body = $(id); body.textContent = '';
    if (list.length === 0) { var tr = body.insertRow(); var td = tr.insertCell(); td.textContent = 'none yet'; td.className = 'empty'; td.colSpan = 9; return; }
    list.forEach(function (item) {
      var tr = body.insertRow();
      cells(item).forEach(function (c) { var td = tr.insertCell(); td.textContent = c[0]; if (c[1]) td.className = c[1]; });
    });
  }
  function render(s) {
    $('hit-ratio-1m').textContent = pct(s.total.hitRatio1m);
    $('hit-ratio-5m').textContent = pct(s.total.hitRatio5m);
    $('req-per-sec').textContent = s.total.requestsPerSecond.toFixed(2);
    $('requests-total').textContent = String(s.total.requests);
    $('bytes-saved').textContent = bytes(s.total.bytesSaved);
    if (s.store.error) { $('store-fill').textContent = '?'; $('store-detail').textContent = s.store.error; }
    else { $('store-fill').textContent = (s.store.fill * 100).toFixed(2) + ' %'; $('store-detail').textContent = bytes(s.store.bytes) + ' of ' + bytes(s.store.maxBytes) + ', ' + s.store.entries + ' entries'; }
    // 30 slots of 10 s ending now; a slot without traffic is an empty bar.
    var byStart = {}, last = s.generatedAt - s.generatedAt % 10000, slots = [], max = 1;
    s.total.timeline.forEach(function (b) { byStart[b.start] = b; max = Math.max(max, b.requests); });
    for (var at = last - 290000; at <= last; at += 10000) slots.push(byStart[at] || { start: at, requests: 0, fromCache: 0 });
    var line = $('timeline'); line.textContent = '';
    slots.forEach(function (b) {
      var bar = document.createElement('div'); bar.style.height = (100 * b.requests / max) + '%';
      bar.title = new Date(b.start).toLocaleTimeString() + ': ' + b.requests + ' requests, ' + b.fromCache + ' from cache';
      var cached = document.createElement('i'); cached.style.height = (b.requests ? 100 * b.fromCache / b.requests : 0) + '%';
      bar.appendChild(cached); line.appendChild(bar);
    });
    rows('workers', s.workers, function (w) {
      return [[w.worker], [duration(w.uptimeSeconds)], [String(w.requests), 'n'], [pct(w.hitRatio1m), 'n'], [pct(w.hitRatio5m), 'n'], [w.requestsPerSecond.toFixed(2), 'n'],
        [bytes(w.bytesSaved), 'n'], [w.memoryTier.entries + ' / ' + bytes(w.memoryTier.bytes), 'n'], [w.underPressure ? 'shedding' : 'ok']];
    });
    rows('top-hits', s.topHits, function (u) { return [[u.url, 'url'], [String(u.count), 'n']]; });
    rows('top-misses', s.topMisses, function (u) { return [[u.url, 'url'], [String(u.count), 'n']]; });
    rows('recent', s.recent, function (p) { return [[new Date(p.time).toLocaleTimeString()], [p.kind], [String(p.status)], [p.code], [p.url, 'url'], [p.worker || '']]; });
    $('updated').textContent = new Date(s.generatedAt).toLocaleTimeString();
    $('status').textContent = s.workers.length + ' worker' + (s.workers.length === 1 ? '' : 's'); $('status').className = '';
  }
  function poll() {
    fetch('stats', { headers: headers, cache: 'no-store' }).then(function (res) {
      if (!res.ok) throw new Error('stats: HTTP ' + res.status);
      return res.json();
    }).then(render).catch(function (e) { $('status').textContent = String(e.message || e); $('status').className = 'bad'; })
      .then(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
</script>
</body></html>
`

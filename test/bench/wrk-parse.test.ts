import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseDurationMs, parseWrk } from '../../bench/wrk.ts'

// Real wrk 4.1.0 output (Debian), one run with non-2xx answers and one with socket errors.
const NON_2XX = `Running 1s test @ http://127.0.0.1:38813/x
  1 threads and 5 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.51ms    8.37ms  72.10ms   90.38%
    Req/Sec     1.55k   614.30     2.25k    70.00%
  Latency Distribution
     50%    2.74ms
     75%    6.62ms
     90%   13.46ms
     99%   47.84ms
  1570 requests in 1.02s, 200.85KB read
  Non-2xx or 3xx responses: 1570
Requests/sec:   1537.09
Transfer/sec:    196.64KB
`
const SOCKET_ERRORS = `Running 3s test @ http://127.0.0.1:1/1m
  1 threads and 50 connections
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    1.90ms
     99%    1.02s
  1303 requests in 3.00s, 1.27GB read
  Socket errors: connect 0, read 2, write 1, timeout 4
Requests/sec:    434.10
Transfer/sec:    434.00MB
`

test('wrk output: req/s, count, percentiles, non-2xx', { timeout: 5000 }, () => {
  const f = parseWrk(NON_2XX)
  assert.equal(f.rps, 1537.09)
  assert.equal(f.requests, 1570)
  assert.equal(f.p50, 2.74)
  assert.equal(f.p99, 47.84)
  assert.equal(f.non2xx, 1570)
  assert.equal(f.errors, 0)
  assert.equal(f.timeouts, 0)
  assert.equal(Math.round(f.bytes), Math.round(200.85 * 1024))
})

test('wrk output: socket errors, microsecond and second latencies, GB read', { timeout: 5000 }, () => {
  const f = parseWrk(SOCKET_ERRORS)
  assert.equal(f.rps, 434.1)
  assert.equal(f.p50, 0.812)
  assert.equal(f.p99, 1020)
  assert.equal(f.errors, 3)
  assert.equal(f.timeouts, 4)
  assert.equal(f.non2xx, 0)
  assert.equal(Math.round(f.bytes / 1024 ** 2), Math.round(1.27 * 1024))
})

test('unreadable output gives NaN, not a number that looks measured', { timeout: 5000 }, () => {
  assert.ok(Number.isNaN(parseWrk('unable to connect to 127.0.0.1:1 Connection refused').rps))
  assert.ok(Number.isNaN(parseDurationMs('fast')))
})

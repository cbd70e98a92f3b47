// Summarises a cache-tests results JSON (http-tests/cache-tests, run through this proxy):
// required and optional ("optimal") behaviours passed, and the list of the others.
// Usage: node scripts/conformance-summary.mjs <suite checkout> <results.json>
// The suite's own result logic decides (dependencies honoured, as on cache-tests.fyi).
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const [suiteDir, resultsFile] = process.argv.slice(2)
if (!suiteDir || !resultsFile) {
  console.error('usage: node scripts/conformance-summary.mjs <suite checkout> <results.json>')
  process.exit(2)
}
const load = (path) => import(pathToFileURL(resolve(suiteDir, path)).href)
const { default: suites } = await load('tests/index.mjs')
const { determineTestResult, resultTypes } = await load('test-engine/lib/results.mjs')
const results = JSON.parse(readFileSync(resultsFile, 'utf8'))

const counts = { required: { pass: 0, total: 0 }, optimal: { pass: 0, total: 0 } }
const failures = { required: [], optimal: [] }
for (const suite of suites) {
  for (const test of suite.tests) {
    const kind = test.kind ?? 'required'
    if (!(kind in counts)) continue
    counts[kind].total++
    const outcome = determineTestResult(suites, test.id, results)
    if (outcome === resultTypes.pass) {
      counts[kind].pass++
      continue
    }
    const detail = Array.isArray(results[test.id]) ? results[test.id].join(': ') : String(results[test.id] ?? 'not run')
    failures[kind].push(`${outcome[2]} ${test.id} (${suite.id}) — ${test.name} — ${detail}`)
  }
}
console.log(`required: ${counts.required.pass}/${counts.required.total}`)
console.log(`optional: ${counts.optimal.pass}/${counts.optimal.total}`)
for (const kind of ['required', 'optimal']) {
  console.log(`\n${kind === 'required' ? 'Required' : 'Optional'} not passed (${failures[kind].length}):`)
  for (const line of failures[kind]) console.log(`  ${line}`)
}

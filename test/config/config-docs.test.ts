import { test, type TestContext } from 'node:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseEnv } from 'node:util'
import { SCHEMA, PM2_SCHEMA } from '../../config/schema.ts'
import { loadConfig, loadPm2Config } from '../../config/index.ts'
import { ROOT } from '../helpers/process.ts'

// Issue #9: each variable is declared once, in config/schema.ts; README's configuration
// table and .env.example must list exactly its variables, with the same defaults.

const DECLARED = new Map([...SCHEMA, ...PM2_SCHEMA].map((v) => [v.name, v.default]))

/** [variable, default cell, meaning] for each row of README's configuration table. */
function readmeRows (): Array<[string, string, string]> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.split(/^## /m).find((part) => part.startsWith('Configuration\n'))
  if (section === undefined) throw new Error('README.md has no "## Configuration" section')
  const rows: Array<[string, string, string]> = []
  for (const line of section.split('\n')) {
    const row = /^\| `([A-Za-z0-9_]+)` \| (.*?) \| (.*) \|$/.exec(line)
    if (row !== null) rows.push([row[1], row[2], row[3]])
  }
  return rows
}

/** [variable, value] for each assignment in .env.example, in order. */
function envExampleLines (): Array<[string, string]> {
  const text = readFileSync(join(ROOT, '.env.example'), 'utf8')
  return text.split('\n').flatMap((line) => {
    const assignment = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line)
    return assignment === null ? [] : [[assignment[1], assignment[2]] as [string, string]]
  })
}

/** `names` (as listed in `where`) are exactly the declared variables, each once. */
function assertDeclared (t: TestContext, names: string[], where: string): void {
  t.assert.deepEqual(names.filter((name, i) => names.indexOf(name) !== i), [], `listed twice in ${where}`)
  t.assert.deepEqual(names.filter((name) => !DECLARED.has(name)), [], `in ${where}, not in config/schema.ts`)
  t.assert.deepEqual([...DECLARED.keys()].filter((name) => !names.includes(name)), [], `in config/schema.ts, not in ${where}`)
}

test('README\'s configuration table lists exactly the declared variables, each once, with its default', (t) => {
  const rows = readmeRows()
  const names = rows.map(([name]) => name)
  assertDeclared(t, names, 'README')
  for (const [name, cell, meaning] of rows) {
    const fallback = DECLARED.get(name)
    // The default is the cell's first code span; an empty default is written "(empty...".
    const shown = fallback === '' ? (cell.startsWith('(empty') ? '' : cell) : /`([^`]*)`/.exec(cell)?.[1]
    t.assert.equal(shown, fallback, `README default of ${name}`)
    t.assert.notEqual(meaning.trim(), '', `README meaning of ${name}`)
  }
})

test('.env.example assigns exactly the declared variables, each once, to its default', (t) => {
  const lines = envExampleLines()
  const names = lines.map(([name]) => name)
  assertDeclared(t, names, '.env.example')
  for (const [name, value] of lines) t.assert.equal(value, DECLARED.get(name), `.env.example default of ${name}`)
})

test('.env.example copied to .env as it is gives the same configuration as no .env at all', (t) => {
  // parseEnv is the parser process.loadEnvFile (loadDotEnv) uses.
  const env = parseEnv(readFileSync(join(ROOT, '.env.example'), 'utf8'))
  t.assert.deepEqual(loadConfig(env), loadConfig({}))
  t.assert.deepEqual(loadPm2Config(env), loadPm2Config({}))
})

/** Every .ts / .cjs / .js source file under `dir`, recursively. */
function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return /\.(ts|cjs|js)$/.test(entry.name) ? [path] : []
  })
}

test('no code outside config/ reads a variable from process.env by name (all go through the schema)', (t) => {
  const files = [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'plugins')), join(ROOT, 'ecosystem.config.cjs')]
  const reads = files.flatMap((file) => {
    const found = readFileSync(file, 'utf8').match(/process\.env(\.[A-Za-z_]\w*|\[['"`][^'"`]+['"`]\])/g) ?? []
    return found.map((read) => `${relative(ROOT, file)}: ${read}`)
  })
  t.assert.deepEqual(reads, [])
})

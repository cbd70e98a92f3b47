import { test } from 'node:test'
import { execFile } from 'node:child_process'
import http from 'node:http'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT, freePort, get } from '../helpers/process.ts'
import type { Pm2Process } from '../helpers/pm2.ts'

// Issue #7 item 9: `npm start` validates the configuration before PM2 sees it, and the
// message, the ecosystem file and the workers read the same resolved configuration.
// `npm start` is `npm run build && node dist/src/start.js`: the tests run the second
// half (the build is done once by `npm test`) in a directory laid out like the repo
// (ecosystem.config.cjs, dist/, .env), with a private PM2_HOME.

const run = promisify(execFile)
const START_JS = join(ROOT, 'dist', 'src', 'start.js')
const PM2 = join(ROOT, 'node_modules', '.bin', 'pm2')

interface Outcome { code: number, stdout: string, stderr: string }

/** A fresh directory like the repo's root, with `dotenv` as its .env when given. */
function appDir (dotenv?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cpx-start-'))
  copyFileSync(join(ROOT, 'ecosystem.config.cjs'), join(dir, 'ecosystem.config.cjs'))
  symlinkSync(join(ROOT, 'dist'), join(dir, 'dist'))
  mkdirSync(join(dir, 'pm2'))
  if (dotenv !== undefined) writeFileSync(join(dir, '.env'), dotenv)
  return dir
}

/** The test runner's environment without what the proxy would read from it. */
function baseEnv (dir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of ['NODE_TEST_CONTEXT', 'NODE_OPTIONS', 'PORT', 'HOST', 'WORKERS', 'CACHE_STORE', 'PM2_APP_NAME', 'MAX_MEMORY_RESTART', 'LOG_LEVEL', 'GLIBC_TUNABLES']) delete env[name]
  return { ...env, PM2_HOME: join(dir, 'pm2'), PM2_DISABLE_VERSION_CHECK: '1', ...extra }
}

async function start (dir: string, env: NodeJS.ProcessEnv): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [START_JS], { cwd: dir, env, timeout: 60_000 })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

for (const [variable, value, where] of [['PORT', 'abc', 'environment'], ['WORKERS', '0', '.env'], ['CACHE_STORE', 'redis:/nope', 'environment'], ['MAX_MEMORY_RESTART', 'lots', '.env']]) {
  test(`start with ${variable}=${value} in the ${where}: exit 78 naming ${variable}, PM2 never started`, { timeout: 30_000 }, async (t) => {
    const dir = appDir(where === '.env' ? `${variable}=${value}\n` : undefined)
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const outcome = await start(dir, baseEnv(dir, where === '.env' ? {} : { [variable]: value }))
    t.assert.equal(outcome.code, 78, outcome.stderr)
    t.assert.match(outcome.stderr, new RegExp(`invalid configuration: ${variable}: expected .*, got "${value}"`))
    t.assert.doesNotMatch(outcome.stdout, /listening/)
    // No daemon was spawned, so no app can be running under it.
    t.assert.equal(existsSync(join(dir, 'pm2', 'pm2.pid')), false, 'no PM2 daemon')
  })
}

test('start with PORT, WORKERS and the app name from .env: the message, PM2 and the workers agree', { timeout: 60_000 }, async (t) => {
  const port = await freePort()
  const name = `cpx-start-${process.pid}-${Date.now()}`
  const dir = appDir([
    `PORT=${port}`,
    'WORKERS=2',
    `PM2_APP_NAME=${name}`,
    'LOG_LEVEL=warn',
    'CACHE_STORE=sqlite://./data/from-dotenv.sqlite',
    ''
  ].join('\n'))
  const env = baseEnv(dir, {})
  const pm2 = async (...args: string[]): Promise<string> => (await run(PM2, args, { cwd: dir, env, timeout: 30_000 })).stdout
  t.after(async () => {
    await pm2('delete', name).catch((error: Error) => t.diagnostic(`pm2 delete: ${error.message}`))
    await pm2('kill').catch((error: Error) => t.diagnostic(`pm2 kill: ${error.message}`))
    const pidFile = join(dir, 'pm2', 'pm2.pid')
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8'))
      try { if (pid > 0) process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    }
    rmSync(dir, { recursive: true, force: true })
  })

  const outcome = await start(dir, env)
  t.assert.equal(outcome.code, 0, outcome.stderr)
  t.assert.match(outcome.stdout, new RegExp(`caching-proxy is listening on http://127\\.0\\.0\\.1:${port}/ with 2 workers`))
  t.assert.match(outcome.stdout, new RegExp(`pm2 logs ${name}`))

  const list = (JSON.parse(await pm2('jlist')) as Pm2Process[]).filter((p) => p.name === name)
  t.assert.deepEqual(list.map((p) => p.pm2_env.status), ['online', 'online'], 'WORKERS from .env gives two instances')
  const home = await get(`http://127.0.0.1:${port}/`)
  t.assert.equal(home.status, 200)
  t.assert.match(home.body, /<title>caching-proxy<\/title>/)
  t.assert.equal(existsSync(join(dir, 'data', 'from-dotenv.sqlite')), true, 'the workers read the same .env (CACHE_STORE)')
  // The malloc tunables (src/worker-env.ts) are in the environment the workers' processes started with.
  for (const { pid } of list) {
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    t.assert.equal(environ.includes(`GLIBC_TUNABLES=glibc.malloc.trim_threshold=${64 * 1024 * 1024}`), true, `worker ${pid} started with the malloc tunables`)
  }

  // `npm start` again while it runs: the port is held by this app, so it restarts it.
  const again = await start(dir, env)
  t.assert.equal(again.code, 0, again.stderr)
  t.assert.match(again.stdout, new RegExp(`listening on http://127\\.0\\.0\\.1:${port}/ with 2 workers`))
  const restarted = (JSON.parse(await pm2('jlist')) as Pm2Process[]).filter((p) => p.name === name)
  t.assert.deepEqual(restarted.map((p) => p.pm2_env.status), ['online', 'online'])

  // `pm2 start ecosystem.config.cjs` by hand is checked by the same validator.
  const direct = await run(PM2, ['start', join(dir, 'ecosystem.config.cjs')], { cwd: dir, env: { ...env, WORKERS: 'lots' }, timeout: 30_000 })
    .then(() => 'started', (error: { stdout?: string, stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`)
  t.assert.match(direct, /invalid configuration: WORKERS: expected .*, got "lots"/)
  const after = (JSON.parse(await pm2('jlist')) as Pm2Process[]).filter((p) => p.name === name)
  t.assert.deepEqual(after.map((p) => p.pid), restarted.map((p) => p.pid), 'the running app is untouched')
})

test('start on a port another program holds: exit 1 naming PORT, no app left in PM2', { timeout: 60_000 }, async (t) => {
  const other = http.createServer((_req, res) => res.end('someone else'))
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => other.close(() => resolve())))
  const port = (other.address() as { port: number }).port
  const name = `cpx-start-busy-${process.pid}-${Date.now()}`
  const dir = appDir(`PORT=${port}\nWORKERS=1\nPM2_APP_NAME=${name}\n`)
  const env = baseEnv(dir, {})
  const pm2 = async (...args: string[]): Promise<string> => (await run(PM2, args, { cwd: dir, env, timeout: 30_000 })).stdout
  t.after(async () => {
    if (existsSync(join(dir, 'pm2', 'pm2.pid'))) await pm2('kill').catch((error: Error) => t.diagnostic(`pm2 kill: ${error.message}`))
    rmSync(dir, { recursive: true, force: true })
  })
  const outcome = await start(dir, env)
  t.assert.equal(outcome.code, 1, outcome.stderr)
  t.assert.match(outcome.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use by another program \\(PORT, HOST\\)`))
  t.assert.doesNotMatch(outcome.stdout, /listening/)
  const list = JSON.parse((await pm2('jlist')).trim().split('\n').at(-1) ?? '[]') as Pm2Process[]
  t.assert.deepEqual(list.filter((p) => p.name === name), [], 'no app left in PM2')
})

// PM2: `npm start` checks the configuration, then runs `pm2 start ecosystem.config.cjs`.
// What PM2 needs (instances, app name, timeouts) comes from the same validated
// configuration as the server (config/schema.ts: environment over ./.env), resolved by
// the built dist/src/pm2-settings.js; an invalid variable fails here, named.
const { execFileSync } = require('node:child_process')
const { join } = require('node:path')

function settings () {
  try {
    const out = execFileSync(process.execPath, [join(__dirname, 'dist', 'src', 'pm2-settings.js')], { cwd: __dirname, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return JSON.parse(out)
  } catch (error) {
    if (error.status === 78) throw new Error(String(error.stderr).trim()) // EX_CONFIG: the variable is named
    throw new Error(`${String(error.stderr || error.message).trim()} (is dist/ built? npm run build)`)
  }
}

const resolved = settings()

module.exports = {
  apps: [{
    name: resolved.name,
    script: 'dist/src/server.js',
    cwd: __dirname,
    exec_mode: 'cluster',
    instances: resolved.workers,
    wait_ready: true, // the worker sends 'ready' after listen(): reloads never drop traffic
    listen_timeout: 10000,
    kill_timeout: resolved.killTimeoutMs, // longer than the worker's own drain (src/server.ts)
    shutdown_with_message: false,
    stop_exit_codes: [78], // an invalid configuration is not retried forever
    max_memory_restart: resolved.maxMemoryRestart,
    pmx: false, // no @pm2/io module injected into workers: it wraps http for metrics we export ourselves (/_proxy/metrics)
    env: {
      NODE_ENV: 'production',
      PM2_DISABLE_VERSION_CHECK: '1'
    }
  }]
}

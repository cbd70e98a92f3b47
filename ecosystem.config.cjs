// PM2: `pm2 start ecosystem.config.cjs`. Every setting comes from the environment
// (see .env.example); the app itself also reads ./.env when present.
const workers = process.env.WORKERS && process.env.WORKERS !== 'max' ? Number(process.env.WORKERS) : 'max'

module.exports = {
  apps: [{
    name: process.env.PM2_APP_NAME || 'caching-proxy',
    script: 'dist/src/server.js',
    cwd: __dirname,
    exec_mode: 'cluster',
    instances: workers,
    wait_ready: true, // the worker sends 'ready' after listen(): reloads never drop traffic
    listen_timeout: 10000,
    kill_timeout: 12000, // longer than the app's own 10 s drain
    shutdown_with_message: false,
    max_memory_restart: process.env.MAX_MEMORY_RESTART || '1G',
    env: {
      NODE_ENV: 'production',
      PM2_DISABLE_VERSION_CHECK: '1'
    }
  }]
}

import { test } from 'node:test'
import { missingTunables, workerEnv } from '../../src/worker-env.ts'

test('workers get the malloc trim threshold through GLIBC_TUNABLES', (t) => {
  t.assert.deepEqual(workerEnv({}), { GLIBC_TUNABLES: `glibc.malloc.trim_threshold=${64 * 1024 * 1024}` })
})

test('an operator\'s own GLIBC_TUNABLES are kept as given, ours added only for what they do not name', (t) => {
  t.assert.deepEqual(workerEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }), {
    GLIBC_TUNABLES: `glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=${64 * 1024 * 1024}`
  })
  t.assert.deepEqual(workerEnv({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072' }), { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072' })
})

test('the start-up environment tells which of the tunables a worker started without', (t) => {
  const environ = (...entries: string[]): string => entries.join('\0') + '\0'
  t.assert.deepEqual(missingTunables(environ('PATH=/usr/bin', 'HOME=/root')), ['glibc.malloc.trim_threshold'])
  t.assert.deepEqual(missingTunables(environ('GLIBC_TUNABLES=')), ['glibc.malloc.trim_threshold'])
  t.assert.deepEqual(missingTunables(environ('GLIBC_TUNABLES=glibc.malloc.arena_max=2')), ['glibc.malloc.trim_threshold'])
  t.assert.deepEqual(missingTunables(environ('A=1', `GLIBC_TUNABLES=${workerEnv({}).GLIBC_TUNABLES}`)), [])
  // An operator's own value counts: they chose it.
  t.assert.deepEqual(missingTunables(environ('GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=131072')), [])
  // Another variable that merely mentions it does not.
  t.assert.deepEqual(missingTunables(environ('NOTE=GLIBC_TUNABLES=glibc.malloc.trim_threshold=1')), ['glibc.malloc.trim_threshold'])
})

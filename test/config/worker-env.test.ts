import { test } from 'node:test'
import { workerEnv } from '../../src/worker-env.ts'

test('workers get the malloc trim threshold through GLIBC_TUNABLES', (t) => {
  t.assert.deepEqual(workerEnv({}), { GLIBC_TUNABLES: `glibc.malloc.trim_threshold=${64 * 1024 * 1024}` })
})

test('an operator\'s own GLIBC_TUNABLES are kept as given, ours added only for what they do not name', (t) => {
  t.assert.deepEqual(workerEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }), {
    GLIBC_TUNABLES: `glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=${64 * 1024 * 1024}`
  })
  t.assert.deepEqual(workerEnv({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072' }), { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072' })
})

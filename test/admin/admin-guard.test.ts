import { test } from 'node:test'
import { adminGuard, bearerToken } from '../../src/admin/admin-guard.ts'
import { cidrList } from '../../src/upstream/address-ranges.ts'

test('admin guard: loopback only by default, ADMIN_ALLOW ranges besides', (t) => {
  const open = adminGuard({ token: '', allow: undefined })
  for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) t.assert.equal(open(address, undefined), undefined, address)
  for (const address of ['10.0.0.1', '192.168.1.1', '8.8.8.8', '::ffff:10.0.0.1', 'fe80::1', '', undefined]) t.assert.equal(open(address, undefined)?.status, 403, String(address))
  const listed = adminGuard({ token: '', allow: cidrList(['10.0.0.0/8', 'fd00::/8']) })
  t.assert.equal(listed('10.1.2.3', undefined), undefined)
  t.assert.equal(listed('fd00::5', undefined), undefined)
  t.assert.equal(listed('11.0.0.1', undefined)?.status, 403)
})

test('admin guard: with a token, exactly `Bearer <token>` passes; the client check comes first', (t) => {
  const guard = adminGuard({ token: 's3cret-token', allow: undefined })
  t.assert.equal(guard('127.0.0.1', 'Bearer s3cret-token'), undefined)
  t.assert.equal(guard('127.0.0.1', 'bearer   s3cret-token '), undefined, 'scheme case and spaces (RFC 6750 §2.1, RFC 9110 §11.1)')
  for (const header of [undefined, '', 'Bearer', 'Bearer s3cret-toke', 'Bearer s3cret-tokenn', 'Basic s3cret-token', 's3cret-token', 'Bearer s3cret token', ['Bearer s3cret-token']]) {
    t.assert.equal(guard('127.0.0.1', header as string)?.status, 401, JSON.stringify(header))
  }
  t.assert.equal(guard('192.0.2.1', 'Bearer s3cret-token')?.status, 403)
  t.assert.equal(bearerToken('Bearer abc.DEF-_~+/=='), 'abc.DEF-_~+/==')
})

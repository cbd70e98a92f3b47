import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP, type BlockList } from 'node:net'
import { judgeAddress } from '../upstream/address-ranges.ts'
import { normalizeHost } from '../upstream/host-names.ts'

export interface AdminRefusal {
  status: 401 | 403
  message: string
}

export interface AdminGuardOptions {
  /** ADMIN_TOKEN: when not empty, `Authorization: Bearer <token>` is required. */
  token: string
  /** ADMIN_ALLOW: client ranges allowed besides loopback (undefined: loopback only). */
  allow: BlockList | undefined
}

/** SHA-256 of a string: equal-length buffers for timingSafeEqual, whatever the lengths given. */
function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or undefined. */
export function bearerToken (header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined
  const match = /^\s*Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header)
  return match === null ? undefined : match[1]
}

/**
 * Who may use the admin endpoints (everything under /_proxy/ but health and ready, and
 * PURGE): loopback clients and ADMIN_ALLOW ranges (403 for others), with the Bearer token
 * when ADMIN_TOKEN is set (401 without it). The token is compared in constant time.
 */
export function adminGuard (options: AdminGuardOptions): (remoteAddress: string | undefined, authorization: string | string[] | undefined) => AdminRefusal | undefined {
  const expected = options.token === '' ? undefined : digest(options.token)
  return (remoteAddress, authorization) => {
    const address = normalizeHost(remoteAddress ?? '')
    const verdict = address === '' ? undefined : judgeAddress(address)
    const loopback = verdict !== undefined && !verdict.allowed && verdict.rule === 'loopback'
    const listed = options.allow !== undefined && isIP(address) !== 0 && options.allow.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')
    if (!loopback && !listed) return { status: 403, message: `client ${address === '' ? 'unknown' : address} may not use the admin endpoints (loopback only, or ADMIN_ALLOW)` }
    if (expected === undefined) return undefined
    const given = bearerToken(authorization)
    // Hashing first makes the comparison independent of the given token's length.
    if (given === undefined || !timingSafeEqual(digest(given), expected)) return { status: 401, message: 'the admin endpoints need Authorization: Bearer <ADMIN_TOKEN>' }
    return undefined
  }
}

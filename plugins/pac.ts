import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/index.ts'
import { MalformedRequest } from '../src/errors.ts'
import { pacScript, proxyAddress } from '../src/browsing/pac.ts'

export const PAC_PATH = '/proxy.pac'

/**
 * `GET /proxy.pac`: the proxy auto-config file that sends a browser's traffic through
 * the proxy at the address the browser used to fetch it. A static route, so it wins over
 * the proxy's `/*` route (a host named `proxy.pac` cannot exist: no such top-level domain).
 */
export default async function pacPlugin (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  fastify.get(PAC_PATH, { config: { public: true } }, async (request, reply) => {
    const proxy = proxyAddress(request.headers.host)
    if (proxy === undefined) throw new MalformedRequest('the Host header must name the proxy as host[:port] to build a PAC file')
    return await reply
      .type('application/x-ns-proxy-autoconfig')
      .header('cache-control', 'no-cache')
      .send(pacScript({ proxy, allowPrivate: opts.config.allowPrivateUpstreams }))
  })
}

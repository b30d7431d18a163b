/**
 * `tollgate/fastify`: the HTTP transport. The receiving side is a fastify plugin (fastify is a peer dependency);
 * the sending side (`HttpSignalSender`, `HttpEdgeClient`) uses node:http and loads no fastify.
 */
export * from '../transports/http/index.js';

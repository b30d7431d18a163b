import type { FastifyInstance, FastifyReply } from 'fastify';
import { PROBLEMS, problemForError, sendProblem } from '../transports/http/index.js';
import type { RouteTable } from './routing.js';

/**
 * How the gateway answers what goes wrong: every error, unknown path and wrong method is a problem document
 * from the catalogue the fastify plugin shares, with the `type` base the deployment configured.
 */
export function answerProblems(app: FastifyInstance, routes: RouteTable, base: string | undefined): void {
  app.setErrorHandler((error, request, reply) => {
    const answer = problemForError(error);
    if (PROBLEMS[answer.kind].status >= 500) request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, answer, base);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = routes.allowedMethods(path);
    // A route that takes this method found nothing (a wildcard route's missing file): not found, too.
    if (allowed.length === 0 || allowed.includes(request.method)) {
      return sendProblem(reply, { kind: 'not-found', detail: `no route ${request.method} ${path}` }, base);
    }
    reply.header('allow', allowed.join(', '));
    const detail = `${path} accepts ${allowed.join(', ')}, not ${request.method}`;
    return sendProblem(reply, { kind: 'method-not-allowed', detail }, base);
  });
}

/** Fastify's `frameworkErrors` option: router-level refusals (bad URL encoding, over-long ids) as problems. */
export function frameworkProblems(base: string | undefined) {
  return (error: Error, _request: unknown, reply: FastifyReply): FastifyReply =>
    sendProblem(reply, problemForError(error), base);
}

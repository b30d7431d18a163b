import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { problemDetailsSchema, sendProblem } from './problem-details.js';
import { isProblemKind, PROBLEM_CONTENT_TYPE, PROBLEMS, type ProblemKind } from './problems.js';

const problemPageSchema = Type.Object({
  kind: Type.String(),
  status: Type.Integer(),
  title: Type.String(),
  code: Type.String(),
  description: Type.String(),
});

/**
 * GET /problems/:kind: what a problem kind means and what to do, from the catalogue, so the default relative
 * `type` of every problem resolves on the server that answered. HTML for people, JSON when asked for.
 */
export function problemPagesRoute(app: FastifyInstance, base?: string): void {
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/problems/:kind',
    {
      schema: {
        operationId: 'problemPage',
        summary: 'What a problem kind means and what to do (HTML, or JSON when asked for)',
        tags: ['operations'],
        params: Type.Object({ kind: Type.String({ pattern: '^[a-z-]{1,64}$' }) }),
        response: {
          200: {
            description: 'the kind from the catalogue',
            content: {
              'text/html': { schema: Type.String() },
              'application/json': { schema: problemPageSchema },
            },
          },
          404: {
            description: 'problem',
            content: { [PROBLEM_CONTENT_TYPE]: { schema: problemDetailsSchema } },
          },
        },
      },
    },
    async (request, reply) => {
      const kind = request.params.kind;
      if (!isProblemKind(kind)) {
        return sendProblem(reply, { kind: 'not-found', detail: `no problem kind "${kind}"` }, base);
      }
      const page = { kind, ...pageOf(kind) };
      if (reply.request.headers.accept?.includes('application/json'))
        return reply.type('application/json').send(page);
      return reply.type('text/html; charset=utf-8').send(html(page));
    },
  );
}

function pageOf(kind: ProblemKind): { status: number; title: string; code: string; description: string } {
  const { status, title, code, description } = PROBLEMS[kind];
  return { status, title, code, description };
}

function html(page: {
  kind: string;
  status: number;
  title: string;
  code: string;
  description: string;
}): string {
  const rows = [
    ['kind', page.kind],
    ['status', String(page.status)],
    ['code', page.code],
  ]
    .map(([name, value]) => `<tr><th>${name}</th><td><code>${escapeHtml(value ?? '')}</code></td></tr>`)
    .join('');
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(page.title)}</title></head>` +
    `<body><h1>${escapeHtml(page.title)}</h1><p>${escapeHtml(page.description)}</p><table>${rows}</table></body></html>`
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

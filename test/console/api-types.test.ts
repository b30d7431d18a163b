import type { Static } from 'typebox';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type * as Console from '../../console/src/types.js';
import { STATUSES } from '../../console/src/types.js';
import { TOKEN_STATUSES } from '../../src/core/token.js';
import type { ProcessInstanceView } from '../../src/gateway/routes/processes.js';
import type {
  ConversationGraph,
  ConversationNode,
  Overview,
  tokenPageSchema,
} from '../../src/gateway/schemas.js';
import type { ProblemDetails } from '../../src/transports/http/problem-details.js';
import type { TokenView } from '../../src/transports/http/token-schemas.js';

/**
 * The console states the API's shapes in its own module (the server's schemas import Node). These checks run when
 * the suite is typechecked (`npm run typecheck`): every answer the gateway can give must be assignable to what the
 * console expects, so a field renamed or retyped on the server breaks the build instead of the page.
 */
describe("the console's view of the API", () => {
  it('accepts every answer the routes can give', () => {
    expectTypeOf<TokenView>().toMatchTypeOf<Console.TokenView>();
    expectTypeOf<Static<typeof tokenPageSchema>>().toMatchTypeOf<Console.TokenPage>();
    expectTypeOf<ConversationNode>().toMatchTypeOf<Console.ConversationNode>();
    expectTypeOf<ConversationGraph>().toMatchTypeOf<Console.ConversationGraph>();
    expectTypeOf<Overview>().toMatchTypeOf<Console.Overview>();
    expectTypeOf<ProcessInstanceView>().toMatchTypeOf<Console.ProcessInstance>();
    expectTypeOf<ProblemDetails>().toMatchTypeOf<Console.ProblemDocument>();
  });

  it('lists the core statuses, in their order', () => {
    expect(STATUSES).toEqual(TOKEN_STATUSES);
  });
});

import * as z from 'zod';

import { AGENT_NAME_PATTERN } from './pattern.js';

export { AGENT_NAME_PATTERN };

export const AgentName = z
  .string({ error: (issue) => (issue.input === undefined ? 'agent field required' : 'agent must be a string') })
  .regex(AGENT_NAME_PATTERN, {
    error: (issue) =>
      `invalid agent name ${JSON.stringify(issue.input)}: expected 1-255 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`,
  });
export type AgentName = z.infer<typeof AgentName>;

export const RequesterName = z
  .string({ error: 'requested_by must be a string' })
  .regex(AGENT_NAME_PATTERN, {
    error: (issue) =>
      `invalid requested_by ${JSON.stringify(issue.input)}: expected 1-255 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`,
  });

/** One status union for a pooled agent; each of them counts against MAX_AGENTS (SPEC §1). */
export const AgentStatus = z.enum(['starting', 'running', 'stopping']);
export type AgentStatus = z.infer<typeof AgentStatus>;

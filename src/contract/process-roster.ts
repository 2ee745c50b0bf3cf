import * as z from 'zod';
import { AGENT_NAME_PATTERN } from './names.js';

const AGENT_NAME_RULE = "1-255 characters of letters, digits, '.', '_' or '-', starting with a letter or digit";

/** Set by the driver to the agent's name; a roster that sets it too would make the agent speak for another. */
const RESERVED_ENV = 'AGENT_ID';

/** One agent of the process driver: how to run it. */
export const ProcessAgentSpec = z.strictObject({
  /** An argv array, run without a shell (STYLE rule 7); `["sh", "-c", "..."]` when a shell is wanted. */
  command: z
    .array(z.string({ error: 'command entries must be strings' }), {
      error: (issue) =>
        typeof issue.input === 'string'
          ? 'command must be an argv array such as ["sh", "-c", "..."], not a shell string'
          : 'command must be an array of strings',
    })
    .min(1, { error: 'command must name a program' })
    .refine((argv) => argv[0] !== '', { error: 'command must name a program' }),
  env: z
    .record(
      z.string().regex(/^[^=\0]+$/, { error: (issue) => `invalid environment variable name ${JSON.stringify(issue.input)}` }),
      z.string({ error: 'environment values must be strings' }),
      { error: (issue) => (issue.code === 'invalid_key' ? `invalid environment variable name ${JSON.stringify(issue.input)}` : 'env must be an object of strings') },
    )
    .refine((env) => !Object.hasOwn(env, RESERVED_ENV), { error: `env may not set ${RESERVED_ENV}: it is always the agent's name` })
    .optional(),
  /** Working directory; relative paths are taken from the roster file's directory, which is also the default. */
  cwd: z.string({ error: 'cwd must be a string' }).min(1, { error: 'cwd must not be empty' }).optional(),
});
export type ProcessAgentSpec = z.infer<typeof ProcessAgentSpec>;

/** The process driver's roster file: `{"agents": {"<name>": {"command": [...], "env": {...}, "cwd": "..."}}}`. */
export const ProcessRosterFile = z.object(
  {
    agents: z.record(
      z.string().regex(AGENT_NAME_PATTERN),
      ProcessAgentSpec,
      {
        error: (issue) =>
          issue.code === 'invalid_key'
            ? `invalid agent name ${JSON.stringify(issue.input)}: expected ${AGENT_NAME_RULE}`
            : 'agents must be an object mapping agent names to their commands',
      },
    ),
  },
  { error: 'expected an object with an "agents" field' },
);
export type ProcessRosterFile = z.infer<typeof ProcessRosterFile>;

/**
 * `<stateDir>/<agent>.pid`, written by the process driver when it starts an agent. `startTime` is
 * field 22 of `/proc/<pid>/stat` (clock ticks after boot), so a pid the kernel has since handed to
 * another process is not mistaken for the agent.
 */
export const ProcessPidFile = z.object({
  pid: z.number().int().positive(),
  startTime: z.number().int().nonnegative(),
});
export type ProcessPidFile = z.infer<typeof ProcessPidFile>;

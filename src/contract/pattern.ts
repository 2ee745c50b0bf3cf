/**
 * SPEC §2: the rule every agent name (and `requested_by`) must follow. In a module of its own so
 * that poolctl can check names without loading zod.
 */
export const AGENT_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$/;

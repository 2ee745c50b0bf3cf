import * as z from 'zod';

// ---- metrics (GET /metrics on the bridge; info.metrics on the socket) ----

export const MetricsInput = z.object({
  /** `text`: the Prometheus exposition format; `json`: the same families as objects. */
  format: z.enum(['text', 'json']).default('text'),
});
export type MetricsInput = z.input<typeof MetricsInput>;

/** One metric family as prom-client's `getMetricsAsJSON` gives it. */
export const MetricFamily = z.object({
  name: z.string(),
  help: z.string(),
  type: z.string(),
  values: z.array(
    z.object({
      labels: z.record(z.string(), z.union([z.string(), z.number()])),
      value: z.number(),
      /** Histograms: `<name>_bucket`, `<name>_sum`, `<name>_count`. */
      metricName: z.string().optional(),
    }),
  ),
});
export type MetricFamily = z.infer<typeof MetricFamily>;

export const MetricsReply = z.discriminatedUnion('format', [
  z.object({ format: z.literal('text'), content_type: z.string(), text: z.string() }),
  z.object({ format: z.literal('json'), families: z.array(MetricFamily) }),
]);
export type MetricsReply = z.infer<typeof MetricsReply>;

// ---- what a running daemon says about itself (info.diagnostics; poolctl doctor) ----

export const DiagnosticsReply = z.object({
  /** Where the HTTP bridge listens now: with POOL_BIND unset, gateways join as their networks appear. */
  bridge: z.object({ addresses: z.array(z.string()), port: z.number().int() }),
});
export type DiagnosticsReply = z.infer<typeof DiagnosticsReply>;

// ---- poolctl doctor --json ----

/** `skip`: the check does not apply (e.g. Docker checks under POOL_DRIVER=process); never fails the run. */
export const DoctorVerdict = z.enum(['pass', 'warn', 'fail', 'skip']);
export type DoctorVerdict = z.infer<typeof DoctorVerdict>;

export const DoctorCheck = z.object({ check: z.string(), verdict: DoctorVerdict, detail: z.string() });
export type DoctorCheck = z.infer<typeof DoctorCheck>;

/** The figures behind the MEMORY_BUDGET suggestion, in bytes. */
export const SizingFigures = z.object({
  /** MemTotal, and MEMORY_RESERVE: the suggestion is the one less the other. */
  total_bytes: z.number(),
  reserve_bytes: z.number(),
  suggested_budget_bytes: z.number(),
  per_agent_bytes: z.number(),
  /** How many agents were measured (the pool's peaks, else `docker stats`); 0 = AGENT_MEMORY_DEFAULT was used. */
  measured_agents: z.number().int(),
  /** How many agents of `per_agent_bytes` the suggested budget fits. */
  fits_agents: z.number().int(),
  /** MEMORY_BUDGET as configured: bytes, `auto`, or null (unset). */
  configured_budget: z.union([z.number(), z.literal('auto')]).nullable(),
  max_agents: z.number().int(),
});
export type SizingFigures = z.infer<typeof SizingFigures>;

export const DoctorReport = z.object({
  /** False when any check failed (poolctl doctor then exits 1). */
  ok: z.boolean(),
  checks: z.array(DoctorCheck),
  sizing: SizingFigures.optional(),
});
export type DoctorReport = z.infer<typeof DoctorReport>;

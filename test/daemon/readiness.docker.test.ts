import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { type TestDaemon, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

const healthcheck = (test: string[]) => ({ test, interval: '500ms', timeout: '2s', retries: 1000, start_period: '0s' });

/** Readiness (issue 7.3): a service with a Docker healthcheck is `started` only once healthy. */
describe.skipIf(!docker)('readiness of services with a healthcheck', () => {
  let project: ComposeProject;
  let p: TestDaemon;
  beforeAll(async () => {
    project = await createComposeProject({
      // Healthy two seconds after it starts.
      slow: agentService({
        command: ['sh', '-c', "trap 'exit 0' TERM INT; (sleep 2; touch /tmp/ready) & while :; do sleep 0.2; done"],
        healthcheck: healthcheck(['CMD', 'test', '-f', '/tmp/ready']),
      }),
      never: agentService({ healthcheck: healthcheck(['CMD-SHELL', 'echo still warming up; exit 1']) }),
      plain: agentService(),
    });
    p = await startTestDaemon({ project, agents: ['slow', 'never', 'plain'], infra: [], env: { READY_TIMEOUT_SECONDS: '3', MAX_AGENTS: '2' } });
  });
  afterAll(async () => {
    await p?.stop();
    await project?.remove();
  });

  const healthOf = async (service: string) => {
    const id = (await project.compose('ps', '--quiet', service)).trim();
    return (await execa('docker', ['inspect', '--format', '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}', id])).stdout;
  };

  it('answers started only once the healthcheck passes', async () => {
    expect(await p.client.request('slow')).toEqual({ status: 'started', agent: 'slow' });
    expect(await healthOf('slow')).toBe('healthy');
  });

  it('answers as soon as running for a service without a healthcheck', async () => {
    expect(await p.client.request('plain')).toEqual({ status: 'started', agent: 'plain' });
    expect(await healthOf('plain')).toBe('none');
    await p.client.release('plain');
  });

  it('stops a start that never becomes healthy, frees its slot, and says why', async () => {
    const reply = await p.http('POST', '/request', { agent: 'never', requested_by: 'ceo' });
    expect(reply.body).toEqual({
      status: 'error',
      agent: 'never',
      error: expect.stringMatching(/^never did not become healthy within 3 s \(health: (starting|unhealthy); last check said: still warming up\); stopped it$/),
    });
    expect(await p.runningInDocker()).toEqual(['slow']);
    const status = await p.client.status();
    expect(status.running.map((a) => a.id)).toEqual(['slow']);
    expect(status.slots_free).toBe(1);
    const { events } = await p.client.history({ agent: 'never' });
    expect(events.map((e) => e.type)).toEqual(['failed']);
    expect(events[0]?.reason).toContain('did not become healthy within 3 s');
  });
});

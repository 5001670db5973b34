/**
 * The agent's Prometheus metrics (prom-client), served by the daemon on `metrics.listen`.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SequencerEvent } from './sequencer/index.js';

/** The metrics one agent keeps. */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly transferBytes = new Counter({ name: 'intercloud_transfer_bytes_total', help: 'Bytes moved by transfers', labelNames: ['direction'] as const, registers: [this.registry] });
  readonly jobDuration = new Histogram({ name: 'intercloud_job_duration_seconds', help: 'Duration of finished jobs', labelNames: ['kind', 'outcome'] as const, buckets: [1, 5, 10, 30, 60, 120, 300, 900, 3600], registers: [this.registry] });
  readonly stepFailures = new Counter({ name: 'intercloud_step_failures_total', help: 'Step failures', labelNames: ['kind', 'step', 'code'] as const, registers: [this.registry] });
  readonly stepDuration = new Histogram({ name: 'intercloud_step_duration_seconds', help: 'Duration of completed steps', labelNames: ['kind', 'step'] as const, buckets: [0.1, 0.5, 1, 5, 15, 60, 300], registers: [this.registry] });
  private readonly jobStarts = new Map<string, number>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Feeds one sequencer event into the counters. */
  observe(event: SequencerEvent): void {
    switch (event.type) {
      case 'step-started':
        if (!this.jobStarts.has(event.jobId)) this.jobStarts.set(event.jobId, Date.now());
        break;
      case 'step-completed':
        this.stepDuration.observe({ kind: event.kind, step: event.step }, event.ms / 1000);
        break;
      case 'step-failed':
        this.stepFailures.inc({ kind: event.kind, step: event.step, code: event.error.code });
        break;
      case 'job-finished': {
        const t0 = this.jobStarts.get(event.jobId);
        if (t0 !== undefined) this.jobDuration.observe({ kind: event.kind, outcome: event.outcome }, (Date.now() - t0) / 1000);
        this.jobStarts.delete(event.jobId);
        break;
      }
      default:
        break;
    }
  }

  /** Serves `/metrics` on `host:port`; resolves once listening. */
  async serve({ host, port }: { host: string; port: number }): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') { res.writeHead(404).end(); return; }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
    await new Promise<void>((ok, fail) => server.once('error', fail).listen(port, host, ok));
    return server;
  }
}

/**
 * Prometheus metrics of replication (prom-client): gauges read from the replicators' status at
 * scrape time, labelled by subcontract, so the figures are the ones `status()` answers.
 */
import { Gauge, type Registry } from 'prom-client';
import type { ReplicationStatus } from './state.js';

/** Registers the replication gauges in `registry`; `statuses` is called at each scrape. */
export function registerReplicationMetrics(registry: Registry, statuses: () => readonly ReplicationStatus[]): void {
  const each = (name: string, help: string, value: (s: ReplicationStatus) => number): void => {
    new Gauge({
      name, help, labelNames: ['subcontract'] as const, registers: [registry],
      collect() {
        this.reset();
        for (const s of statuses()) this.set({ subcontract: s.subcontractId }, value(s));
      },
    });
  };
  each('intercloud_replication_pending_objects', 'Objects whose copy or delete at the peer is owed', (s) => s.objects.pending);
  each('intercloud_replication_pending_bytes', 'Bytes of the objects whose copy is owed', (s) => s.pendingBytes);
  each('intercloud_replication_oldest_pending_seconds', 'Age of the oldest owed copy or delete', (s) => s.oldestPendingAgeSeconds);
  each('intercloud_replication_completed_objects', 'Objects the peer confirmed it holds in their current version', (s) => s.objects.completed);
  each('intercloud_replication_moved_bytes', 'Bytes the peer confirmed since the journal began', (s) => s.bytesMoved);
  each('intercloud_replication_last_full_pass_timestamp_seconds', 'When the last full listing pass ended', (s) => (s.lastFullPassAt ? Date.parse(s.lastFullPassAt) / 1000 : 0));
  new Gauge({
    name: 'intercloud_replication_failed_objects', help: 'FAILED objects by reason code', labelNames: ['subcontract', 'code'] as const, registers: [registry],
    collect() {
      this.reset();
      for (const s of statuses()) for (const [code, n] of Object.entries(s.failedByCode)) this.set({ subcontract: s.subcontractId, code }, n);
    },
  });
}

/** The webhook's Prometheus metrics, rendered in the text exposition format (version 0.0.4). */

export type Outcome = 'injected' | 'skipped' | 'denied' | 'error';

const BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly outcomes: Record<Outcome, number> = { injected: 0, skipped: 0, denied: 0, error: 0 };
  private readonly bucketCounts = new Array<number>(BUCKETS_SECONDS.length).fill(0);
  private latencySum = 0;
  private latencyCount = 0;
  private cacheHits = 0;
  private certReloads = 0;
  private certReloadErrors = 0;

  request(path: string, code: number, seconds: number): void {
    const key = `${labelPath(path)}\u0000${code}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (path === '/inject' || path.startsWith('/inject/')) {
      this.latencySum += seconds;
      this.latencyCount++;
      const at = BUCKETS_SECONDS.findIndex((le) => seconds <= le);
      if (at !== -1) this.bucketCounts[at]!++;
    }
  }

  outcome(outcome: Outcome): void {
    this.outcomes[outcome]++;
  }

  cacheHit(): void {
    this.cacheHits++;
  }

  certReload(ok: boolean): void {
    if (ok) this.certReloads++;
    else this.certReloadErrors++;
  }

  render(): string {
    const lines: string[] = [
      '# HELP meshcap_webhook_requests_total HTTP requests by path and status code.',
      '# TYPE meshcap_webhook_requests_total counter',
    ];
    for (const [key, count] of [...this.requests].sort()) {
      const [path, code] = key.split('\u0000');
      lines.push(`meshcap_webhook_requests_total{path="${path}",code="${code}"} ${count}`);
    }
    lines.push(
      '# HELP meshcap_webhook_inject_duration_seconds Time to answer POST /inject, from the first byte read to the last written.',
      '# TYPE meshcap_webhook_inject_duration_seconds histogram',
    );
    let cumulative = 0;
    BUCKETS_SECONDS.forEach((le, i) => {
      cumulative += this.bucketCounts[i]!;
      lines.push(`meshcap_webhook_inject_duration_seconds_bucket{le="${le}"} ${cumulative}`);
    });
    lines.push(
      `meshcap_webhook_inject_duration_seconds_bucket{le="+Inf"} ${this.latencyCount}`,
      `meshcap_webhook_inject_duration_seconds_sum ${this.latencySum}`,
      `meshcap_webhook_inject_duration_seconds_count ${this.latencyCount}`,
    );
    const counter = (name: string, help: string, value: number) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
    counter('meshcap_webhook_injected_total', 'Pods answered with an injection patch.', this.outcomes.injected);
    counter('meshcap_webhook_skipped_total', 'Pods allowed unchanged (opted out, host network, already injected, not a pod).', this.outcomes.skipped);
    counter('meshcap_webhook_denied_total', 'Pods rejected because an annotation is invalid.', this.outcomes.denied);
    counter('meshcap_webhook_errors_total', 'Requests that could not be answered with an AdmissionReview (bad body, size, type, timeout, internal error).', this.outcomes.error);
    counter('meshcap_webhook_answer_cache_hits_total', 'Reviews answered from the answer cache (same request as an earlier one but for its uid).', this.cacheHits);
    counter('meshcap_webhook_cert_reloads_total', 'Successful TLS certificate reloads.', this.certReloads);
    counter('meshcap_webhook_cert_reload_errors_total', 'Failed TLS certificate reloads (the previous certificate stays in use).', this.certReloadErrors);
    return `${lines.join('\n')}\n`;
  }
}

/** Bounded label values: arbitrary request paths must not grow the series without limit. */
function labelPath(path: string): string {
  if (path === '/inject' || path.startsWith('/inject/')) return '/inject';
  if (path === '/healthz' || path === '/readyz' || path === '/metrics') return path;
  return 'other';
}

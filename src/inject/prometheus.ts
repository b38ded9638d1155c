/**
 * Prometheus "metrics merge": the app's scrape annotations move into the proxy
 * (ISTIO_PROMETHEUS_ANNOTATIONS) and the pod is pointed at the agent's status
 * port, unless the app opts out. Prometheus's Kubernetes discovery reads an
 * annotation through its label name (every character outside [a-zA-Z0-9_]
 * becomes `_`), so `prometheus.io/scrape`, `prometheus.io.scrape` and
 * `prometheus-io/scrape` are one setting; Istio matches them the same way and
 * reads the value with Go's strconv.ParseBool. Pure.
 */
import { parseGoBool } from '../config/argv.js';
import { Annotation, type PodOptions, boolAnnotation } from './annotations.js';

export type ScrapeField = 'scrape' | 'port' | 'path';

const LABEL_NAMES: Readonly<Record<string, ScrapeField>> = {
  prometheus_io_scrape: 'scrape',
  prometheus_io_port: 'port',
  prometheus_io_path: 'path',
};

/** Prometheus's SanitizeLabelName. */
export function labelName(key: string): string {
  return key.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** Which scrape setting an annotation key spells, in any of Prometheus's spellings. */
export function scrapeField(key: string): ScrapeField | undefined {
  return Object.hasOwn(LABEL_NAMES, labelName(key)) ? LABEL_NAMES[labelName(key)] : undefined;
}

/**
 * False when any spelling of prometheus.io/scrape reads as false ("false",
 * "False", "0", "f", ...). A value ParseBool refuses is ignored, as Istio does.
 */
export function scrapeWanted(annotations: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(annotations)) {
    if (scrapeField(key) === 'scrape' && parseGoBool(value) === false) return false;
  }
  return true;
}

/** Whether meshcap points Prometheus at the agent: a status port, no opt-out, merge not disabled. */
export function mergesMetrics(annotations: Readonly<Record<string, string>>, options: PodOptions, subject: string): boolean {
  // Istio validates merge-metrics as a boolean; a typo is refused rather than read as "on".
  const merge = boolAnnotation(Annotation.mergeMetrics, annotations[Annotation.mergeMetrics], true, subject);
  return options.statusPort !== 0 && merge && scrapeWanted(annotations);
}

/** The app's own scrape settings, whatever their spelling (the first spelling of each wins). */
export function scrapeSettings(annotations: Readonly<Record<string, string>>): Partial<Record<ScrapeField, string>> {
  const out: Partial<Record<ScrapeField, string>> = {};
  for (const [key, value] of Object.entries(annotations)) {
    const field = scrapeField(key);
    if (field !== undefined && out[field] === undefined) out[field] = value;
  }
  return out;
}

/** Removes every spelling of the scrape annotations: Prometheus would pick one of two conflicting ones at random. */
export function clearScrapeAnnotations(annotations: Record<string, unknown>): void {
  for (const key of Object.keys(annotations)) {
    if (scrapeField(key) !== undefined) delete annotations[key];
  }
}

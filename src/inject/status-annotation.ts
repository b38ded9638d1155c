/**
 * The records a previous injection leaves on the pod: sidecar.istio.io/status
 * (what was injected, Istio's format) and proxy.istio.io/overrides (the user's
 * own istio-proxy / istio-init fields). Read back on re-injection. Pure.
 */
import { ConfigError } from '../config/parse.js';
import { Annotation } from './annotations.js';
import { type JsonObject, asArray, isObject } from './json.js';
import type { InjectSettings } from './settings.js';

/** What a previous injection recorded (Istio's sidecar.istio.io/status format). */
export interface InjectionStatus {
  readonly initContainers: readonly string[];
  readonly containers: readonly string[];
  readonly volumes: readonly string[];
}

export function statusText(status: InjectionStatus, settings: InjectSettings): string {
  const orNull = (names: readonly string[]) => (names.length > 0 ? [...names] : null);
  return JSON.stringify({
    initContainers: orNull(status.initContainers),
    containers: orNull(status.containers),
    volumes: orNull(status.volumes),
    imagePullSecrets: null,
    revision: settings.revision,
  });
}

export function parseStatus(text: string | undefined, subject: string): InjectionStatus | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError(`annotation ${Annotation.status}`, text, 'is not JSON', 'remove it, or restore the value the injector wrote', `on ${subject}`);
  }
  const names = (key: string): string[] => {
    const list = isObject(value) ? value[key] : undefined;
    if (list === null || list === undefined) return [];
    if (!Array.isArray(list) || !list.every((n) => typeof n === 'string')) {
      throw new ConfigError(`annotation ${Annotation.status}`, text, `${key} is not a list of names`, 'remove it, or restore the value the injector wrote', `on ${subject}`);
    }
    return list as string[];
  };
  return { initContainers: names('initContainers'), containers: names('containers'), volumes: names('volumes') };
}

export function parseOverrides(text: string, subject: string): JsonObject[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError(`annotation ${Annotation.overrides}`, text, 'is not JSON', 'remove it, or restore the value the injector wrote', `on ${subject}`);
  }
  if (!isObject(value)) return [];
  return [...(asArray(value.initContainers) ?? []), ...(asArray(value.containers) ?? [])].filter(isObject);
}

/** Small pod manifests for injection tests. */

/** A one-container Pod as YAML text; `extra` is appended under `spec:` (indented two spaces). */
export const podManifest = (annotations: Record<string, string> = {}, extra = '') => `apiVersion: v1
kind: Pod
metadata:
  name: app
  annotations: ${JSON.stringify(annotations)}
spec:
  containers:
  - name: app
    image: app
${extra}`;

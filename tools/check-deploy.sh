#!/usr/bin/env bash
# Validates the deployment files offline (make test runs it): the Kubernetes manifests as rendered
# by kustomize against the Kubernetes schemas, the Prometheus rules, the HAProxy configuration and
# the scale-out compose file. Needs kubectl, promtool (Debian's prometheus) and haproxy.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
for tool in kubectl promtool haproxy; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install kubectl prometheus haproxy)" >&2; exit 1; }
done
for overlay in deploy/k8s/base deploy/k8s/overlays/*/; do
    rendered="$(mktemp)"
    kubectl kustomize "$overlay" > "$rendered"
    # --strict rejects unknown fields; a removed API version only warns, so warnings fail too.
    output="$("$bin/kubernetes-validate" --strict "$rendered" 2>&1)" || { echo "$output"; exit 1; }
    if grep -q "WARN" <<<"$output"; then echo "$output"; exit 1; fi
    echo "$overlay: $(grep -c passed <<<"$output") objects valid"
    rm -f "$rendered"
done
promtool check rules deploy/prometheus/rules.yml
haproxy -c -q -f deploy/haproxy/haproxy.cfg && echo "deploy/haproxy/haproxy.cfg: valid"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.scale.yml

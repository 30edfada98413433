#!/usr/bin/env bash
# The system programs some of make test's checks use, beyond what pip installs: Chromium (browser
# tests), promtool (Prometheus rules and metrics) and HAProxy (its configuration). One place for
# them, used by make test and .ci/run. As root on Debian it installs what is missing with
# apt-get; elsewhere it says, one line each, what is missing and how to get it, and the checks
# that need it skip with the same message, unless REQUIRE_SYSTEM_TOOLS is set (.ci/run sets it),
# which makes a missing one an error. kubectl comes from PyPI (the dev extra).
set -euo pipefail
missing=()
for pair in chromium:chromium promtool:prometheus haproxy:haproxy; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair##*:}")
done
(( ${#missing[@]} )) || exit 0
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "system-tools: installing ${missing[*]} (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    exit 0
fi
for package in "${missing[@]}"; do
    echo "system-tools: $package is not installed: the checks that need it are skipped (Debian: apt-get install $package)"
done
if [[ -n "${REQUIRE_SYSTEM_TOOLS:-}" ]]; then
    echo "system-tools: REQUIRE_SYSTEM_TOOLS is set and ${missing[*]} cannot be installed here" >&2
    exit 1
fi

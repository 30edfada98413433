#!/usr/bin/env bash
# Vendor Swagger UI from npm's swagger-ui-dist into app/static/swagger-ui/ (the service's docs page
# must work with no internet). Usage: tools/update-swagger-ui.sh [VERSION]; then run make test.
set -euo pipefail
version="${1:-5.35.0}"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf "swagger-ui-dist-$version.tgz")
target=app/static/swagger-ui
for file in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
    cp "$work/package/$file" "$target/$file"
done
echo "$version" > "$target/VERSION"
(cd "$target" && sha256sum swagger-ui-bundle.js swagger-ui.css favicon-32x32.png > SHA256SUMS)
echo "swagger-ui-dist $version vendored into $target"

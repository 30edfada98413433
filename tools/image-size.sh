#!/usr/bin/env bash
# The image's size, and how much of it is the project's own layers: builds the Dockerfile with
# podman (as ../shared/tools/container-check and bench.scale do: BUILDAH_ISOLATION=chroot) and
# writes docs/image.json. The base image's share depends on which python:3.11-slim the build
# found (the official one, or container-check's Debian stand-in), so both figures are recorded.
#   tools/image-size.sh [EXTRAS]     e.g. tools/image-size.sh tensorflow
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
tag="denoise-service:size-check${extras:+-$extras}"
BUILDAH_ISOLATION=chroot podman build --quiet --build-arg "EXTRAS=$extras" -t "$tag" . >/dev/null
image=$(podman image inspect "$tag" --format '{{.Size}}')
base=$(podman image inspect python:3.11-slim --format '{{.Size}}')
venv=$(podman run --rm --entrypoint du "$tag" -sb /opt/venv | cut -f1)
cat > docs/image.json <<JSON
{
  "command": "tools/image-size.sh${extras:+ $extras}",
  "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
  "commit": "$(git rev-parse --short HEAD)",
  "extras": "$extras",
  "image_mb": $((image / 1000000)),
  "base_image_mb": $((base / 1000000)),
  "own_layers_mb": $(((image - base) / 1000000)),
  "venv_mb": $((venv / 1000000))
}
JSON
cat docs/image.json

#!/usr/bin/env bash
# A stand-in for python:3.11-slim where no container registry is reachable: Debian bookworm (Python 3.11) from
# the Debian archive by debootstrap, imported as localhost/rag-base:bookworm. Needs root and debootstrap.
set -euo pipefail
TAG=${TAG:-localhost/rag-base:bookworm}
ENGINE=${ENGINE:-podman}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$MIRROR"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | "$ENGINE" import --change 'CMD ["python3"]' - "$TAG"
echo "built $TAG"

#!/usr/bin/env bash
# Refreshes the API docs' assets under rag/web/vendor/ from the npm registry: Swagger UI (/docs) and ReDoc
# (/redoc) are served from the package itself, so the docs work with no internet and send readers' browsers to
# no CDN. Only the files the pages load are kept (no source maps), with each project's licence.
# Swagger UI 5, not the `swagger-ui-bundle` PyPI package: that one ships Swagger UI 4.15, which cannot render
# the OpenAPI 3.1 documents FastAPI writes.
set -euo pipefail
SWAGGER_UI=${SWAGGER_UI:-5.35.0}
REDOC=${REDOC:-2.5.4}
root="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$root/rag/web/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "swagger-ui-dist@$SWAGGER_UI" "redoc@$REDOC" >/dev/null)
mkdir -p "$work/s" "$work/r"
tar xzf "$work/swagger-ui-dist-$SWAGGER_UI.tgz" -C "$work/s"
tar xzf "$work/redoc-$REDOC.tgz" -C "$work/r"

rm -rf "$vendor/swagger-ui" "$vendor/redoc"
mkdir -p "$vendor/swagger-ui" "$vendor/redoc"
cp "$work/s/package/"{swagger-ui-bundle.js,swagger-ui.css,LICENSE,NOTICE} "$vendor/swagger-ui/"
cp "$work/s/package/swagger-ui-bundle.js.LICENSE.txt" "$vendor/swagger-ui/"
# The bundle ends with a sourceMappingURL comment; the map is not shipped, so drop the dangling reference.
sed -i '/^\/\/# sourceMappingURL=/d' "$vendor/swagger-ui/swagger-ui-bundle.js"
sed -i 's#/\*\# sourceMappingURL=swagger-ui.css.map\*/##' "$vendor/swagger-ui/swagger-ui.css"
echo "swagger-ui-dist $SWAGGER_UI (npm)" > "$vendor/swagger-ui/VERSION"
cp "$work/r/package/bundles/"{redoc.standalone.js,redoc.standalone.js.LICENSE.txt} "$vendor/redoc/"
cp "$work/r/package/LICENSE" "$vendor/redoc/"
sed -i '/^\/\/# sourceMappingURL=/d' "$vendor/redoc/redoc.standalone.js"
# ReDoc's "API docs by Redocly" footer loads its logo from Redocly's CDN; an empty data: URL fails to load, and
# ReDoc then drops the image (its onError), so the page fetches nothing from outside.
sed -i 's#src:"https://cdn.redoc.ly/redoc/logo-mini.svg"#src:"data:,"#' "$vendor/redoc/redoc.standalone.js"
grep -q 'cdn.redoc.ly/redoc/logo' "$vendor/redoc/redoc.standalone.js" && { echo "ReDoc logo URL not replaced" >&2; exit 1; }
echo "redoc $REDOC (npm)" > "$vendor/redoc/VERSION"
du -sh "$vendor"/*

#!/bin/sh
# FerretDB v1 is no longer released, so its fixes live here as diffs against the version go.mod names
# (tools/docstore/patches/*.patch, each saying why). This copies that version's module out of the Go
# module cache into OUT_DIR, applies the patches and writes OUT_DIR/go.mod: tools/docstore's go.mod
# with the patched copy replacing the module, for `go build -modfile OUT_DIR/go.mod`.
# Usage: patch-ferretdb.sh OUT_DIR  (prints the go.mod's path)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
rm -rf "$out" && mkdir -p "$out"
cd "$here"
go mod download github.com/FerretDB/FerretDB
src=$(go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)
cp -R "$src" "$out/ferretdb" && chmod -R u+w "$out/ferretdb"
for p in "$here"/patches/*.patch; do
  (cd "$out/ferretdb" && git apply -p1 "$p")  # git: in every clone, unlike patch(1)
done
cp go.mod "$out/go.mod" && cp go.sum "$out/go.sum"
printf '\nreplace github.com/FerretDB/FerretDB => %s/ferretdb\n' "$out" >> "$out/go.mod"
echo "$out/go.mod"

#!/bin/sh
# Remove what install.sh put under its prefix (recorded in INSTALLED.txt beside this script).
# The demo cache (~/.cache/patchcore_gui), settings and run files are the user's: kept.
set -eu

app=$(cd "$(dirname "$0")" && pwd)
prefix=$(sed -n 's/^prefix=//p' "$app/INSTALLED.txt" 2>/dev/null || true)
if [ -z "$prefix" ] || [ "$app" != "$prefix/lib/patchcore-inspector" ]; then
    echo "uninstall.sh: $app was not installed by install.sh (no INSTALLED.txt)" >&2
    exit 1
fi
for exe in patchcore-gui patchcore; do
    if [ -L "$prefix/bin/$exe" ] && [ "$(readlink "$prefix/bin/$exe")" = "$app/$exe" ]; then
        rm -f "$prefix/bin/$exe"
    fi
done
share="$prefix/share"
rm -f "$share/applications/patchcore-inspector.desktop" \
      "$share/icons/hicolor/scalable/apps/patchcore-inspector.svg" \
      "$share/mime/packages/patchcore-inspector.xml"
if command -v update-mime-database >/dev/null 2>&1 && [ -d "$share/mime/packages" ]; then
    update-mime-database "$share/mime" || true
fi
if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$share/applications" ]; then
    update-desktop-database "$share/applications" || true
fi
rm -rf "$app"
echo "PatchCore Inspector removed from $prefix"

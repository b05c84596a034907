#!/bin/sh
# Install PatchCore Inspector from an unpacked bundle archive.
#
#   ./install.sh [--prefix DIR] [--no-register]
#
# Copies this folder to DIR/lib/patchcore-inspector, links DIR/bin/patchcore-gui and
# DIR/bin/patchcore, and registers the desktop entry, the icon and the .patchcore /
# .pcrun file types (opening one from the file manager opens it in the window).
# DIR defaults to ~/.local for a user and /usr/local for root. Needs no Python, no
# compiler and no network; only sh and coreutils. update-mime-database and
# update-desktop-database are run when the machine has them (shared-mime-info,
# desktop-file-utils). Undo with DIR/lib/patchcore-inspector/uninstall.sh.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix="${HOME:?HOME is not set}/.local"; fi
register=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a folder" >&2; exit 2; }
                  prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --no-register) register=0; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac

for f in patchcore-gui patchcore _internal; do
    [ -e "$here/$f" ] || { echo "install.sh: $here is not a PatchCore Inspector bundle ($f missing)" >&2; exit 1; }
done

# glibc: the bundle's libraries were linked against this version or older.
need=$(sed -n 's/^glibc_min=//p' "$here/BUNDLE_INFO.txt" 2>/dev/null || true)
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}' || true)
if [ -n "$need" ] && [ -n "$have" ]; then
    lowest=$(printf '%s\n%s\n' "$need" "$have" | sort -t. -k1,1n -k2,2n | head -n1)
    if [ "$lowest" != "$need" ]; then
        echo "install.sh: this machine has glibc $have; the bundle needs $need or newer" >&2
        exit 1
    fi
fi

app="$prefix/lib/patchcore-inspector"
if [ "$here" = "$app" ]; then
    echo "install.sh: already installed at $app" >&2
    exit 1
fi
echo "Installing PatchCore Inspector into $app"
mkdir -p "$prefix/lib" "$prefix/bin"
rm -rf "$app.new"
cp -R "$here" "$app.new"
rm -rf "$app"  # a previous version: its libraries must not mix with these
mv "$app.new" "$app"
for exe in patchcore-gui patchcore; do
    ln -sfn "$app/$exe" "$prefix/bin/$exe"
done

if [ "$register" = 1 ]; then
    share="$prefix/share"
    mkdir -p "$share/applications" "$share/icons/hicolor/scalable/apps" "$share/mime/packages"
    # Exec and TryExec with the full path: the launcher's PATH may not include $prefix/bin.
    sed -e "s|^Exec=patchcore-gui|Exec=$app/patchcore-gui|" -e "s|^TryExec=patchcore-gui|TryExec=$app/patchcore-gui|" \
        "$app/share/patchcore-inspector.desktop" > "$share/applications/patchcore-inspector.desktop"
    cp "$app/share/patchcore-inspector.svg" "$share/icons/hicolor/scalable/apps/patchcore-inspector.svg"
    cp "$app/share/patchcore-inspector-mime.xml" "$share/mime/packages/patchcore-inspector.xml"
    if command -v update-mime-database >/dev/null 2>&1; then
        update-mime-database "$share/mime" || echo "install.sh: update-mime-database failed (file types not registered)" >&2
    else
        echo "install.sh: update-mime-database not found: .patchcore/.pcrun open with the app once shared-mime-info is installed" >&2
    fi
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database "$share/applications" || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t "$share/icons/hicolor" 2>/dev/null || true
    fi
fi
printf 'prefix=%s\nregistered=%s\n' "$prefix" "$register" > "$app/INSTALLED.txt"
echo "Installed: $prefix/bin/patchcore-gui and $prefix/bin/patchcore"
echo "Check it with: $prefix/bin/patchcore doctor && $prefix/bin/patchcore-gui --self-test"

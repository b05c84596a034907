#!/usr/bin/env bash
# make bundle-check: prove the packed bundle works on its own.
#
# Unpacks dist/patchcore-inspector-*.tar.gz into a temporary folder, installs it there
# with its install.sh, and runs the installed programs in a clean environment (env -i:
# no .venv on PATH, PYTHONPATH unset, a fresh HOME and so an empty demo cache, run from
# another folder, offscreen Qt):
#   patchcore doctor             exit 0, and its Python is the bundle's
#   patchcore demo               builds the demo set and TRAINS the demo model from the bundle
#   patchcore predict            on the demo test folder: CSV identical to the .venv's
#   patchcore report             the run file to PDF
#   patchcore-gui --self-test    window, demo via the demo child, run, threshold, report
# then uninstalls. Prints each step and a summary (sizes, start-up time); exit 1 at the
# first failure. The work folder is kept on failure, removed on success. The output
# is also written to dist/bundle-check.log.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
archives=("$root"/dist/patchcore-inspector-*-linux-*.tar.gz)
if [ ${#archives[@]} -ne 1 ]; then
    echo "bundle-check: expected one dist/patchcore-inspector-*.tar.gz, found ${#archives[@]} (run make bundle)" >&2
    exit 1
fi
archive=${archives[0]}
exec > >(tee "$root/dist/bundle-check.log") 2>&1  # the last run's output, for the notes
venv_cli="$root/.venv/bin/patchcore"
work=$(mktemp -d /tmp/patchcore-bundle-check.XXXXXX)
keep=1
trap '[ "$keep" = 0 ] && rm -rf "$work"' EXIT
mkdir -p "$work/home" "$work/elsewhere" "$work/out"
fail() { echo "bundle-check: FAILED: $*" >&2; echo "bundle-check: work folder kept: $work" >&2; exit 1; }
step() { echo "== $*"; }

# A machine without our Python: nothing of the repository or its venv is visible.
clean() {
    (cd "$work/elsewhere" && env -i HOME="$work/home" PATH=/usr/bin:/bin LANG=C.UTF-8 \
        QT_QPA_PLATFORM=offscreen "$@")
}

step "unpack $(basename "$archive")"
tar -C "$work" -xzf "$archive"
unpacked=("$work"/patchcore-inspector-*/)
[ ${#unpacked[@]} -eq 1 ] || fail "the archive has no single top folder"
unpacked=${unpacked[0]%/}

step "install.sh --prefix $work/prefix"
clean sh "$unpacked/install.sh" --prefix "$work/prefix"
prefix="$work/prefix"
app="$prefix/lib/patchcore-inspector"
bin="$prefix/bin"
for exe in patchcore patchcore-gui; do
    [ -x "$bin/$exe" ] || fail "$bin/$exe was not installed"
done
desktop="$prefix/share/applications/patchcore-inspector.desktop"
grep -qx "Exec=$app/patchcore-gui %F" "$desktop" || fail "$desktop: Exec does not point at the installed program"
grep -q "application/x-patchcore-run" "$desktop" || fail "$desktop: no MimeType for run files"
[ -f "$prefix/share/icons/hicolor/scalable/apps/patchcore-inspector.svg" ] || fail "icon not installed"
if command -v update-mime-database >/dev/null 2>&1; then
    grep -q "application/x-patchcore-run:\*\.pcrun" "$prefix/share/mime/globs2" || fail ".pcrun not registered"
    grep -q "application/x-patchcore-model:\*\.patchcore" "$prefix/share/mime/globs2" || fail ".patchcore not registered"
    echo "file types registered: *.pcrun, *.patchcore"
fi

step "patchcore doctor"
rc=0; clean "$bin/patchcore" doctor > "$work/out/doctor.txt" || rc=$?
cat "$work/out/doctor.txt"
[ "$rc" = 0 ] || fail "doctor exit $rc"
grep -q "^versions  python .*$app/patchcore" "$work/out/doctor.txt" || fail "doctor's python is not the bundle's"

step "patchcore demo (trains the demo model from the bundle, empty cache)"
t0=$(date +%s)
clean "$bin/patchcore" demo --quiet > "$work/out/demo.csv" || fail "demo exit $?"
rows=$(($(wc -l < "$work/out/demo.csv") - 1))
[ "$rows" -gt 0 ] || fail "demo predicted nothing"
echo "demo: $rows images scored, $(( $(date +%s) - t0 )) s"

cache="$work/home/.cache/patchcore_gui"
model="$cache/demo/brick-efficientnet_lite0.patchcore"
images="$cache/demo/brick/test"
[ -f "$model" ] && [ -d "$images" ] || fail "the demo model or folder is not where expected ($cache)"

step "patchcore predict: bundle vs .venv on the same model and folder"
clean "$bin/patchcore" predict --model "$model" --images "$images" --device cpu --quiet \
    --output "$work/out/bundle.csv" --run "$work/out/check.pcrun" || fail "bundle predict exit $?"
(cd "$work/elsewhere" && env -u PYTHONPATH HOME="$work/home" "$venv_cli" predict --model "$model" \
    --images "$images" --device cpu --quiet --output "$work/out/venv.csv") || fail ".venv predict exit $?"
cmp -s "$work/out/bundle.csv" "$work/out/venv.csv" || {
    diff "$work/out/bundle.csv" "$work/out/venv.csv" | head -20
    built=$(sed -n 's/^source_commit=//p' "$unpacked/BUNDLE_INFO.txt")
    now=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
    [ "$built" = "$now" ] && [ -z "$(git -C "$root" status --porcelain -- patchcore_gui)" ] || \
        echo "bundle-check: the bundle was built from $built, the .venv runs $now (+ local edits?): run make bundle again" >&2
    fail "bundle and .venv scores differ"; }
echo "scores identical: $(($(wc -l < "$work/out/bundle.csv") - 1)) rows (cmp of the two CSV files)"

step "patchcore report to PDF"
clean "$bin/patchcore" report "$work/out/check.pcrun" --output "$work/out/report.pdf" --all --quiet \
    || fail "report exit $?"
[ "$(head -c 5 "$work/out/report.pdf")" = "%PDF-" ] || fail "report.pdf is not a PDF"
grep -aq "DejaVuSans" "$work/out/report.pdf" || fail "report.pdf does not embed the bundled DejaVu fonts"
echo "report.pdf: $(stat -c %s "$work/out/report.pdf") bytes, DejaVu fonts embedded"

step "patchcore-gui --self-test (offscreen)"
clean "$bin/patchcore-gui" --self-test --self-test-dir "$work/out/self-test" | tee "$work/out/self-test.txt"
[ "${PIPESTATUS[0]}" = 0 ] || fail "self-test exit ${PIPESTATUS[0]}"
startup=$(sed -n 's/.*window ok (usable \([0-9.]*\) s after launch.*/\1/p' "$work/out/self-test.txt")

step "uninstall.sh"
clean sh "$app/uninstall.sh"
[ ! -e "$bin/patchcore" ] && [ ! -e "$app" ] && [ ! -e "$desktop" ] || fail "uninstall left files behind"

info() { sed -n "s/^$1=//p" "$unpacked/BUNDLE_INFO.txt"; }
step "summary"
echo "archive:  $(basename "$archive") $(( $(stat -c %s "$archive") / 1048576 )) MiB compressed"
echo "unpacked: $(( $(info bytes_unpacked) / 1048576 )) MiB, of which CUDA libraries $(( $(info bytes_cuda_libraries) / 1048576 )) MiB"
echo "needs:    glibc >= $(info glibc_min); torch $(info torch) (CUDA $(info torch_cuda))"
echo "start-up: window usable ${startup:-?} s after launch"
echo "bundle-check: PASSED"
keep=0

#!/usr/bin/env bash
# The two installs, measured from nothing: a fresh venv, `pip install` with no pip cache, then the
# first labelled photo (scikit-image's astronaut through `aidentify live`). Numbers: docs/install.md.
# usage: benchmarks/install.sh [RUNS]   (from the repository root; writes under a temporary folder)
set -euo pipefail
root=$(pwd)
runs=${1:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -c "import sys; print(sys.version.split()[0])"
"${PYTHON:-.venv/bin/python}" -c "
import cv2; from skimage import data
cv2.imwrite('$work/astronaut.png', cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))"
for run in $(seq "$runs"); do
  for spec in "$root" "$root[train]" "$root[dev,train]"; do
    venv="$work/venv"
    rm -rf "$venv"
    start=$(date +%s.%N)
    python3 -m venv "$venv"
    PIP_NO_CACHE_DIR=1 "$venv/bin/pip" install --quiet "$spec" 2>/dev/null
    installed=$(date +%s.%N)
    (cd "$work" && "$venv/bin/aidentify" live --source astronaut.png --no-window --timeline t.csv >/dev/null)
    done_at=$(date +%s.%N)
    grep -q ",astronaut.png,1," "$work/t.csv"  # one face labelled
    label=${spec#"$root"}
    printf '%-22s run %d: %s, %d packages, install %.1f s, first photo %.1f s, total %.1f s\n' \
      "pip install .${label}" "$run" "$(du -sh "$venv" | cut -f1)" "$("$venv/bin/pip" list 2>/dev/null | tail -n +3 | wc -l)" \
      "$(echo "$installed - $start" | bc)" "$(echo "$done_at - $installed" | bc)" "$(echo "$done_at - $start" | bc)"
  done
done

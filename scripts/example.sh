#!/usr/bin/env bash
# The main job on bundled data, for a fresh Debian 12 machine: installs dependencies, builds,
# pre-trains one se_e2_a trunk on two fidelities of the same molecules (GFN1-xTB and GFN-FF, one
# head each, DeePMD-kit's multi-task input), fine-tunes it on the third fidelity (GFN2-xTB) from
# the GFN1 branch and from a fresh head, and tests both. A few minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
out="${1:-$root/runs/example}"
af="$root/build/src/cli/atomforge"
ex="$root/examples/multitask"
rm -rf "$out" && mkdir -p "$out"

"$af" train "$ex/pretrain.json" -o "$out/pretrain"
"$af" show "$out/pretrain/model.ckpt.pt"
for branch in gfn1 RANDOM; do
  "$af" train "$ex/finetune.json" -o "$out/finetune-$branch" --finetune "$out/pretrain/model.ckpt.pt" --model-branch "$branch"
done
"$af" train "$ex/finetune.json" -o "$out/scratch"
for run in finetune-gfn1 finetune-RANDOM scratch; do
  "$af" freeze "$out/$run/model.ckpt.pt" -o "$out/$run/model.pth"
  echo "== $run on GFN2 validation data"
  "$af" test -m "$out/$run/model.pth" -s "$root/examples/data/mf/gfn2/valid" -d "$out/$run/test" | tail -6
done

echo "learning curves: $out/*/lcurve.out"
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  /usr/bin/python3 "$root/scripts/plot_lcurve.py" "$out/pretrain.png" "pretrain=$out/pretrain/lcurve.out"
  /usr/bin/python3 "$root/scripts/plot_lcurve.py" "$out/finetune.png" "from-gfn1=$out/finetune-gfn1/lcurve.out" \
    "fresh-head=$out/finetune-RANDOM/lcurve.out" "scratch=$out/scratch/lcurve.out"
  echo "plots: $out/pretrain.png $out/finetune.png"
else
  echo "plots: install python3-matplotlib and run scripts/plot_lcurve.py (see README)"
fi

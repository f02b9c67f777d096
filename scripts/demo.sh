#!/usr/bin/env bash
# The demo: set up, fetch weights, render a sample spin set, find the product on every view.
#   scripts/demo.sh            real weights (downloaded once into ~/.cache/prodseg/models)
#   scripts/demo.sh --offline  no downloads: seeded random weights, results meaningless
# On a machine without a GPU it uses the small models and a coarser proposal grid so the
# demo ends in minutes; set PRODSEG_* variables to choose otherwise.
source "$(dirname "$0")/env.sh"
OUT="${OUT:-outputs/demo}"
SAMPLE="${SAMPLE:-outputs/sample}"

if ! python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "==> no GPU: small models (hiera_tiny, ViT-S/14), 8x8 proposal grid, 8 photos at 640x480"
  export PRODSEG_SAM2_CHECKPOINT="${PRODSEG_SAM2_CHECKPOINT:-hiera_tiny}"
  export PRODSEG_DINOV2_MODEL="${PRODSEG_DINOV2_MODEL:-vit_small_patch14_dinov2}"
  export PRODSEG_SAM2_POINTS_PER_SIDE="${PRODSEG_SAM2_POINTS_PER_SIDE:-8}"
  SIZE="${SIZE:-640x480}"
  VIEWS="${VIEWS:-7}" SHELF="${SHELF:-1}"
fi

if [ "${1:-}" = "--offline" ]; then
  export PRODSEG_WEIGHTS=random
elif ! prodseg models download; then
  echo
  echo "!! The weights could not be downloaded (no network?). Going on with SEEDED RANDOM"
  echo "!! WEIGHTS: the run shows the whole pipeline, but its masks and matches are meaningless."
  echo
  export PRODSEG_WEIGHTS=random
fi
if [ "${PRODSEG_WEIGHTS:-}" = random ]; then
  # Random weights give low scores and blobs of any size: keep every proposal and the
  # best three per image, so that every kind of output is written and can be looked at.
  export PRODSEG_SAM2_PRED_IOU_THRESH=0 PRODSEG_SAM2_STABILITY_SCORE_THRESH=0
  export PRODSEG_SIMILARITY_THRESHOLD=-1 PRODSEG_MAX_MASK_AREA_RATIO=1
fi

echo "==> rendering a sample spin set into $SAMPLE"
rm -rf "$SAMPLE"
prodseg sample --output "$SAMPLE" --size "${SIZE:-1024x768}" --views "${VIEWS:-12}" \
  --shelf-only "${SHELF:-2}" >/dev/null
read -r REF X Y < <(python - "$SAMPLE/sample.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
print(doc["reference"], *doc["reference_point"])
PY
)
echo "==> prodseg run --images $SAMPLE/images --reference $SAMPLE/$REF --ref-point $X,$Y --output $OUT"
# A previous demo's outputs would mix with this run's.
[ -f "$OUT/results.json" ] && rm -rf "$OUT"
status=0
prodseg run --images "$SAMPLE/images" --reference "$SAMPLE/$REF" --ref-point "$X,$Y" \
  --output "$OUT" || status=$?
echo
echo "Open the gallery: $(cd "$OUT" && pwd)/gallery.html"
exit $status

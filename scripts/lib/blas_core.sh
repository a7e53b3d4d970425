# Sourced by the benchmark scripts: every program of a side-by-side run gets the OpenBLAS
# kernels metalearn runs. Debian's python3-torch loads the same OpenBLAS, which on a CPU newer
# than itself falls back to its SSE3 kernels; metalearn corrects that for itself
# (src/runtime/blas_core.hpp), so the peers get the same kernels through OPENBLAS_CORETYPE.
# A user's own OPENBLAS_CORETYPE is left as it is.
#   ml_export_blas_core build-release/metalearn
ml_export_blas_core() {
  [[ -n ${OPENBLAS_CORETYPE:-} ]] && return 0
  local core
  core=$("$1" --version | sed -n 's/.*OpenBLAS kernels: \([A-Za-z0-9_]*\) (chosen.*/\1/p')
  if [[ -n $core ]]; then
    export OPENBLAS_CORETYPE=$core
    echo "OpenBLAS kernels for every program: $core (OPENBLAS_CORETYPE, as metalearn chose)" >&2
  fi
}

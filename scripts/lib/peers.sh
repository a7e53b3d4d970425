# Sourced by the side-by-side benchmarks against the Python peers (bench_peers.sh,
# bench_w3.sh): what every such run needs before it times anything.
#   ml_peer_python              Debian's python3-torch and python3-numpy, installed when missing
#   ml_release_build DIR        a Release build of the tool and metalearn_bench_meta in DIR
#   $ml_tuned_malloc            GLIBC_TUNABLES giving a peer metalearn's allocator settings
#                               (src/runtime/device.cpp: mallopt of the same three thresholds)
ml_tuned_malloc="glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"
ml_tuned_malloc+=":glibc.malloc.top_pad=268435456"

ml_peer_python() {
  dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed" ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends python3-torch python3-numpy >&2; }
}

ml_release_build() {
  [[ -f $1/CMakeCache.txt ]] ||
    cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=Release -DML_BUILD_TESTS=OFF >&2
  cmake --build "$1" -j"$(nproc)" --target metalearn metalearn_bench_meta >&2
}

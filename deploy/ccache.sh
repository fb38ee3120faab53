# Sourced by build.sh and test.sh (from the repository root): compile
# through ccache when it is installed, so a fresh clone on a machine that
# built Tally before (CI's) recompiles only what changed. Its own cache
# directory, 10 GB by default; paths are made relative to the clone, so
# clones in different directories share it. TALLY_CCACHE=0 turns it off.
if [ "${TALLY_CCACHE:-1}" != 0 ] && command -v ccache >/dev/null; then
  export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tally-ccache}"
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-10G}"
  TALLY_LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
else
  TALLY_LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=)
fi

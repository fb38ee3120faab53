#!/usr/bin/env bash
# Self-test of check_no_float.sh. Every snippet becomes a file of its own:
# the bad ones (floating point hidden behind comments, literals, line
# splices...) in one temporary tree, the good ones (the words in comments and
# strings, our own names like `floor`, std::chrono::floor) in another. The
# checker must exit 1 on the bad tree naming every bad file, and 0 on the
# good tree. Fails listing every snippet the checker misjudged.
# usage: check_no_float_test.sh [path/to/check_no_float.sh]
set -u
here=$(cd "$(dirname "$0")" && pwd)
checker=${1:-$here/check_no_float.sh}
[ -f "$checker" ] || { echo "no checker at $checker"; exit 2; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
cases=0
misjudged=0
bad_files=()

# add TREE CONTENT [PATH]: writes CONTENT to a new file, PATH (relative to
# the tree root, default pricing/snippet.h) with the case number in its name.
add() {
    local tree=$1 content=$2 path=${3:-pricing/snippet.h}
    cases=$((cases + 1))
    path=$(dirname "$path")/case${cases}_$(basename "$path")
    mkdir -p "$tmp/$tree/pricing" "$tmp/$tree/$(dirname "$path")"
    printf '%s\n' "$content" >"$tmp/$tree/$path"
    [ "$tree" = bad ] && bad_files+=("$path")
}
bad() { add bad "$@"; }
good() { add good "$@"; }

# --- must be caught ---------------------------------------------------------
bad 'inline double Tax(double amount)'
bad 'inline double Tax(double amount) // double'
bad 'float x; // ok'
bad '/* */ double y;'
bad '/* double */ double y;'
bad 'int a; /* a */ float b; /* b */'
bad $'/* a comment\n   over lines */ float c;'
bad $'// a comment\ndouble d;'
bad 'long double z;'
bad 'const char* s = "x"; double y;'
bad 'const char* s = "a \"quoted\" word"; double y;'
bad $'char q = \'"\'; double y;'
bad $'char q = \'\\\'\'; double y;'
bad 'auto s = R"(a " quote)"; double y;'
bad 'auto s = R"x(a )" fake end)x"; double y;'
bad $'int a = 1\'000\'000; double y;'
bad $'dou\\\nble y;'
bad 'auto r = std::stod(text);'
bad 'auto r = strtod(p, nullptr);'
bad 'auto r = std::strtof(p, nullptr);'
bad 'auto r = atof(p);'
bad 'auto r = std::stof(text);'
bad 'auto f = std::floor(x);'
bad 'auto f = ::std::ceil(x);'
bad 'auto f = ::floor(x);'
bad 'auto f = floorf(x);'
bad 'auto f = fmod(a, b);'
bad 'auto f = std::pow(10, 2);'
bad 'auto f = std::round(x);'
bad 'auto f = std::llround(x);'
bad 'auto f = __builtin_floor(x);'
bad 'auto half = 0.5;'
bad 'auto half = .5;'
bad 'auto big = 1e18;'
bad 'auto x = 2.f;'
bad 'auto x = 0x1p3;'
bad $'auto x = 1\'000.5;'
bad '#include <cmath>'
bad '#include <math.h>'
bad '#include <cfloat>'
bad '#include "float.h"'
bad '#include /* why */ <cmath>'
bad '#define MONEY double'
bad 'std::chrono::duration<double> d;'
bad 'auto limit = std::numeric_limits<float>::max();'
bad 'auto v = node.as<double>();'
bad 'auto v = element.get_double();'
bad '_Float64 x;'
bad '__float128 x;'
bad 'double y;' ledger/snippet.cc
bad 'double y;' base/snippet.h
bad 'double y;' pricing/internal/snippet.h
bad 'double y;' pricing/snippet.cpp

# --- must pass --------------------------------------------------------------
good '// double is not allowed here, nor float'
good '/* float or double */ int x;'
good $'/*\n double\n float\n */ int x;'
good 'int x; /* double */ int y; // float'
good 'const char* msg = "no double here, 0.5 is text";'
good 'std::string s = "a \"double\" quoted";'
good $'char c = \'d\'; // double'
good 'auto s = R"(double)";'
good 'auto s = R"x(a )" double )x";'
good $'auto t = u8"double"; auto w = L\'d\'; auto r = LR"(float)";'
good $'int64_t n = 1\'000\'000\'000; int64_t m = 0x1E; auto u = 10ull;'
good $'// a comment continued by a backslash \\\ndouble y;'
good 'Decimal floor = x.Round(2, mode); Decimal diff = floor - z;'
good 'const int64_t day = std::chrono::floor<std::chrono::days>(t).time_since_epoch().count();'
good 'bool is_doubled = false; int double_entry_id = 1; int floating_window = 2;'
good 'Decimal r = x.Round(2, RoundingMode::kHalfEven); auto y = obj.floor(); auto z = p->round(1);'
good 'int128 remainder = a % b; log("rate applied");'
good 'int version = 3;  // since v1.5, 1e3 tokens'
good '#include <cstdint>'
good 'double y;' ingest/snippet.cc  # not the money path

# --- the verdicts --------------------------------------------------------------
printf 'int ok;\n' >"$tmp/good/pricing/ok.h"
output=$(bash "$checker" "$tmp/bad" 2>&1)
rc=$?
if [ "$rc" -ne 1 ]; then
    misjudged=$((misjudged + 1))
    echo "MISJUDGED: the tree of bad snippets exited $rc, expected 1"
fi
for path in "${bad_files[@]}"; do
    if ! grep -q "^$path:" <<<"$output"; then
        misjudged=$((misjudged + 1))
        echo "MISJUDGED: not caught: $path:"
        sed 's/^/    | /' "$tmp/bad/$path"
    fi
done
output=$(bash "$checker" "$tmp/good" 2>&1)
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "MISJUDGED: the tree of good snippets exited $rc, expected 0:"
    printf '%s\n' "$output" | sed 's/^/    > /'
    flagged=$(grep -oE '^pricing/case[0-9]+_[^:]*:' <<<"$output" | sort -u | wc -l)
    misjudged=$((misjudged + (flagged > 0 ? flagged : 1)))
fi

# --- a wrong directory is an error, never a pass -----------------------------
cases=$((cases + 1))
mkdir -p "$tmp/empty"
bash "$checker" "$tmp/empty" >/dev/null 2>&1
rc=$?
if [ "$rc" -ne 2 ]; then
    misjudged=$((misjudged + 1))
    echo "MISJUDGED: a tree without pricing/, ledger/ or base/ exited $rc, expected 2"
fi

if [ "$misjudged" -ne 0 ]; then
    echo "check_no_float.sh misjudged $misjudged of $cases cases"
    exit 1
fi
echo "check_no_float.sh judged all $cases cases right"

#!/usr/bin/env bash
# Money is exact: no float or double on the money path (pricing/, ledger/).
set -u
root=${1:?usage: check_no_float.sh SOURCE_DIR}
cd "$root" || exit 2
hits=$(grep -rnwE 'float|double|long double|strtod|stod|atof' pricing ledger --include='*.h' --include='*.cc' 2>/dev/null \
       | grep -v '^\s*//' | grep -vE '//.*\b(float|double)\b')
if [ -n "$hits" ]; then
    echo "floating point on the money path:"
    echo "$hits"
    exit 1
fi
echo "no floating point in pricing/ or ledger/"

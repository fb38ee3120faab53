#!/usr/bin/env bash
# Dependency direction of DESIGN.md, checked on the sources (the link graph
# in CMakeLists.txt is the other half): base includes nothing of ours; pricing
# only base, and no I/O library; ledger includes of ingest only the interfaces
# it implements (ingest/sink.h), ingest nothing of ledger; libpqxx stays in
# ledger/; render (the invoice PDF) takes formatted text and includes nothing
# of ours, and base and pricing do not include it; billing (pure, like
# pricing) sees pricing and base only; documents (the exported invoice
# documents) sees billing, render, pricing and of the ledger only
# ledger/invoice_store.h (the Issuer value), never libpqxx; quoting (tally
# quote, POST /v1/quotes) never Kafka, app/ or api/; nothing includes app/.
set -u
root=${1:?usage: check_layers.sh SOURCE_DIR}
cd "$root" || exit 2
fail=0
check() {  # dir, forbidden regex, why, [allowed regex]
    local hits
    hits=$(grep -rnE "$2" "$1" --include='*.h' --include='*.cc' 2>/dev/null | grep -vE "${4:-^$}")
    if [ -n "$hits" ]; then
        echo "layering violation in $1/ ($3):"
        echo "$hits"
        fail=1
    fi
}
check base '#include [<"](billing|pricing|ingest|ledger|render|app)/|#include <(pqxx|librdkafka|simdjson)' "base depends on nothing of ours"
check pricing '#include [<"](billing|ingest|ledger|render|app)/|#include <(pqxx|librdkafka|simdjson)' "pricing depends on nothing of ours and does no I/O"
[ -d billing ] && check billing '#include [<"](ingest|ledger|render|app)/|#include <(pqxx|librdkafka|simdjson|yaml-cpp)' \
    "billing depends on pricing and base only, and does no I/O"
[ -d ingest ] && check ingest '#include [<"](ledger|app)/' "ingest sees pricing only"
[ -d ledger ] && check ledger '#include [<"](ingest|app)/' "ledger sees pricing, and of ingest only the interfaces it implements" \
    '#include "ingest/sink[.]h"'
check ingest '#include "ingest/(dev_broker|synthetic)[.]h"' "the mock broker and synthetic load are dev tools (tally_devtools)" \
    '^ingest/(dev_broker|synthetic)[.]cc:'
[ -d render ] && check render '#include [<"](base|pricing|ingest|ledger|app)/|#include <(pqxx|librdkafka|simdjson)' \
    "render depends on nothing of ours: its input is already-formatted text"
[ -d documents ] && check documents '#include [<"](ingest|ledger|app)/|#include <(pqxx|librdkafka|simdjson)' \
    "documents sees billing, render and pricing, and of the ledger only the Issuer value" '#include "ledger/invoice_store[.]h"'
[ -d app ] && check app '#include <pqxx' "libpqxx stays inside ledger/"
[ -d api ] && check api '#include [<"](app|ingest)/|#include <pqxx' \
    "api (tally serve) sees base, pricing, billing, ledger's stores, render and documents; never app/ or libpqxx" \
    '#include "ingest/sink[.]h"'
[ -d api ] && check api '#include <boost/' "Boost.Beast/Asio stay in api/server.cc (compile time)" '^api/server[.]cc:'
[ -d quoting ] && check quoting '#include [<"](app|api)/|#include <(pqxx|librdkafka)|#include "ingest/(kafka|consumer|producer|consume_loop|dev_broker|synthetic)[.]h"' \
    "quoting (tally quote, POST /v1/quotes) sees billing, pricing, ledger's stores and ingest's rating pipeline; never Kafka, app/ or api/"
for d in base pricing billing ingest ledger render documents quoting; do
    [ -d $d ] && check $d '#include [<"]api/' "nothing below api/ includes it"
done
[ -d bench ] && check bench '#include [<"]app/' "nothing depends on app"
count=$(find pricing ingest -name '*.cc' | wc -l)
if [ "$count" -lt 5 ]; then echo "found only $count sources: wrong directory?"; fail=1; fi
[ $fail -eq 0 ] && echo "layers ok ($count sources checked)"
exit $fail

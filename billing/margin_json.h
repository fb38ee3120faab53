// Margin rows as JSON, written one way for `tally margin --format json` and
// `GET /v1/margin` (docs/api.md), so both give the same digits. Exact
// decimals as strings, never numbers. Pure.
#pragma once

#include <string>
#include <vector>

#include "billing/margin.h"

namespace tally::billing {

// One grouped row: {"<by>":key,"currency":..,"calls":N,"revenue":"..",
// "cost":".."|null,"cost_known":bool,"margin":".."|null,
// "margin_percent":".."|"n/a","negative":bool[,"cost_unknown":..][,"error":..]}.
std::string MarginGroupRowJson(MarginGroup by, const MarginGroupRow& row);

// The rows summed per currency (two currencies are never added): the totals
// of a margin table, ordered by currency code; a total's cost is unknown
// when any row's is, its error the first of its rows'.
std::vector<MarginFigures> MarginTotals(const std::vector<MarginRow>& rows);

// A total as JSON: the fields of MarginGroupRowJson without the key.
std::string MarginTotalJson(const MarginFigures& total);

}  // namespace tally::billing

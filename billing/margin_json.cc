#include "billing/margin_json.h"

#include "billing/invoice_document.h"

namespace tally::billing {

namespace {

std::string JsonAmount(const std::optional<Amount>& a) {
    return a ? JsonQuote(a->ToString()) : "null";
}

// The fields after the key, each starting with ','.
std::string FigureFields(const MarginFigures& f) {
    std::string out = ",\"currency\":" + JsonQuote(f.currency.code()) + ",\"calls\":" + std::to_string(f.calls) +
                      ",\"revenue\":" + JsonQuote(f.revenue.ToString()) + ",\"cost\":" + JsonAmount(f.cost) +
                      ",\"cost_known\":" + (f.cost_known() ? "true" : "false") + ",\"margin\":" + JsonAmount(f.margin) +
                      ",\"margin_percent\":" + JsonQuote(f.MarginPercentText()) +
                      ",\"negative\":" + (f.negative ? "true" : "false");
    if (!f.cost_unknown.empty()) out += ",\"cost_unknown\":" + JsonQuote(f.cost_unknown);
    if (!f.error.empty()) out += ",\"error\":" + JsonQuote(f.error);
    return out;
}

}  // namespace

std::string MarginGroupRowJson(MarginGroup by, const MarginGroupRow& row) {
    return "{" + JsonQuote(MarginGroupName(by)) + ":" + JsonQuote(row.key) + FigureFields(row.figures) + "}";
}

std::vector<MarginFigures> MarginTotals(const std::vector<MarginRow>& rows) {
    // One key for every row: GroupMarginRows then sums per currency only.
    std::vector<MarginRow> all = rows;
    for (MarginRow& r : all) r.customer.clear();
    std::vector<MarginFigures> out;
    for (MarginGroupRow& g : GroupMarginRows(all, MarginGroup::kCustomer)) out.push_back(std::move(g.figures));
    return out;
}

std::string MarginTotalJson(const MarginFigures& total) {
    std::string fields = FigureFields(total);
    fields[0] = '{';
    return fields + "}";
}

}  // namespace tally::billing

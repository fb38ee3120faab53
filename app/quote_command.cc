// `tally quote`: a customer's period (or the whole book's) as billed today
// next to the same calls re-rated under a candidate plan that is not
// published. The computation is quoting/quote_run.h's (POST /v1/quotes
// answers the same); this file reads the plan file and prints the result.
#include <algorithm>
#include <iostream>
#include <optional>
#include <utility>

#include "app/commands.h"
#include "app/progress.h"
#include "app/report.h"
#include "billing/invoice_run.h"
#include "billing/quote.h"
#include "quoting/quote_run.h"

namespace tally {

namespace {

// "2025-11" -> month id; nullopt when not a month.
// The one reading of "YYYY-MM" (billing/invoice_run.h).
std::optional<int32_t> ParseMonth(const std::string& text) {
    return billing::PeriodIdOf(text);
}

// Flags that must hold before anything is read.
int CheckOptions(const QuoteOptions& o, std::ostream& err) {
    if (o.format != "table" && o.format != "json") {
        err << "tally quote: --format must be table or json, not '" << o.format << "'\n";
        return kExitUsage;
    }
    if (o.customer.empty() == !o.all_customers) {
        err << "tally quote: give --customer ID or --all-customers (one of them)\n";
        return kExitUsage;
    }
    if (!ParseMonth(o.period)) {
        err << "tally quote: --period is a month like 2025-11, not '" << o.period << "'\n";
        return kExitUsage;
    }
    if (o.plan.empty()) {
        err << "tally quote: --plan names the candidate plan file (YAML, docs/plan-format.md)\n";
        return kExitUsage;
    }
    return kExitOk;
}

}  // namespace

int ComputeQuote(const QuoteOptions& o, QuoteResult* result, std::ostream& err) {
    if (const int bad = CheckOptions(o, err); bad != kExitOk) return bad;
    quoting::QuoteInput in;
    in.database_url = DatabaseUrl(o.database_url);
    if (in.database_url.empty()) {
        err << "tally quote: no database: give --database-url or set TALLY_DATABASE_URL\n";
        return kExitUsage;
    }
    std::string error;
    if (!ReadFile(o.plan, &in.plan_text, &error)) {
        err << "tally quote: " << error << "\n";
        return kExitFailure;
    }
    in.plan_file = o.plan;
    in.customer = o.customer;
    in.all_customers = o.all_customers;
    in.period = o.period;
    std::optional<Progress> progress;
    in.on_customers = [&](int64_t customers) {
        Progress::Options po;
        po.what = "customers";
        po.total = customers;
        po.terminal = o.terminal;
        progress.emplace(err, po);
    };
    in.on_quoted = [&] {
        if (progress) progress->Advance(1);
    };
    in.warn = [&](const std::string& message) { err << "tally quote: " << message << "\n"; };
    const quoting::QuoteStatus status = quoting::ComputeQuote(in, result);
    if (progress) progress->Done();
    if (status.ok()) return kExitOk;
    for (const Diagnostic& d : status.problems) err << d.ToString() << "\n";
    if (status.failure == quoting::QuoteFailure::kInvalidPlan) {
        err << status.message << "\n";
    } else {
        err << "tally quote: " << status.message << "\n";
    }
    return kExitFailure;
}

namespace {

std::string Money(const Amount& a) {
    return a.ToString(a.currency().minor_digits());
}

std::string Signed(const Amount& a) {
    return (a.is_negative() || a.is_zero() ? "" : "+") + Money(a);
}

std::string Change(const std::optional<Percent>& p) {
    if (!p) return "n/a";
    return (p->value().is_negative() || p->value().is_zero() ? "" : "+") + p->value().ToString(2) + "%";
}

std::string CellText(const billing::QuoteLineKey& k) {
    std::string c = k.band;
    if (!k.output_condition.empty()) c += " " + k.output_condition;
    if (!k.window.empty()) c += " " + k.window;
    if (k.batch) c += " batch";
    if (k.thinking) c += " thinking";
    if (!k.tier.empty()) c += (c.empty() ? "" : " ") + k.tier;
    if (!k.description.empty()) c += (c.empty() ? "" : " ") + k.description;
    return c;
}

std::string Joined(const std::vector<std::string>& items) {
    std::string s;
    for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
    return s.empty() ? "-" : s;
}

void Table(std::ostream& out, const std::vector<std::vector<std::string>>& rows, size_t left_columns) {
    std::vector<size_t> width(rows.front().size(), 0);
    for (const auto& r : rows) {
        for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], DisplayWidth(r[i]));
    }
    for (const auto& r : rows) {
        std::string line = " ";
        for (size_t i = 0; i < r.size(); ++i) {
            const std::string pad(width[i] - DisplayWidth(r[i]), ' ');
            line += " " + (i < left_columns ? r[i] + pad : pad + r[i]);
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out << line << "\n";
    }
}

std::vector<std::string> TotalRow(const std::string& what, const billing::Comparison& c) {
    return {what, "", "", "", "", "", Money(c.current), Money(c.candidate), Signed(c.difference), Change(c.change)};
}

void WriteRejected(std::ostream& out, const std::vector<QuoteRejected>& rejected) {
    if (rejected.empty()) return;
    constexpr size_t kShownMax = 20;
    out << "  " << rejected.size() << " call(s) of the period could not be priced under the candidate"
        << (rejected.size() > kShownMax ? " (the first 20; --format json lists all)" : "") << ":\n";
    for (size_t i = 0; i < rejected.size() && i < kShownMax; ++i) {
        const QuoteRejected& r = rejected[i];
        out << "    " << r.topic << "/" << r.partition << "@" << r.offset << "  " << r.code << ": " << r.reason << "\n";
    }
}

void WriteCustomerTable(std::ostream& out, const QuoteResult& result, const QuoteCustomerResult& c) {
    const billing::CustomerQuote& q = c.quote;
    out << "quote " << q.customer << (q.customer_name.empty() ? "" : " (" + q.customer_name + ")") << ", " << q.period
        << ": current " << Joined(q.plans_current) << ", candidate " << result.candidate_plan
        << (result.replaces_published ? " (in place of the published plan)" : " (not published)") << "\n";
    out << "  calls: " << q.calls_current << " billed, " << q.calls_candidate << " re-rated under the candidate ("
        << c.archived << " archived messages read)\n";
    for (const std::string& e : q.errors) out << (q.no_usage ? "  " : "  NOT COMPARED: ") << e << "\n";
    if (q.errors.empty()) {
        std::vector<std::vector<std::string>> rows = {{"kind", "model", "unit", "cell", "qty current", "qty candidate",
                                                       "current " + std::string(q.currency.code()), "candidate",
                                                       "difference", "change"}};
        for (const billing::QuoteLine& l : q.lines) {
            rows.push_back({std::string(LineKindName(l.key.kind)), l.key.model, l.key.unit, CellText(l.key),
                            l.in_current ? std::to_string(l.quantity_current) : "-",
                            l.in_candidate ? std::to_string(l.quantity_candidate) : "-", Money(l.amount.current),
                            Money(l.amount.candidate), Signed(l.amount.difference), Change(l.amount.change)});
        }
        rows.push_back(TotalRow("subtotal", q.subtotal));
        rows.push_back(TotalRow("tax", q.tax));
        rows.push_back(TotalRow("total", q.total));
        rows.push_back(TotalRow("amount due", q.amount_due));
        Table(out, rows, 4);
    }
    WriteRejected(out, c.rejected);
}

void WriteBookTable(std::ostream& out, const QuoteResult& result, const std::string& period) {
    out << "quote of the book, " << period << ": every customer on candidate " << result.candidate_plan
        << (result.replaces_published ? " (in place of the published plan)" : " (not published)") << "\n";
    std::vector<std::vector<std::string>> rows = {
        {"customer", "name", "calls", "currency", "current total", "candidate total", "difference", "change"}};
    for (const QuoteCustomerResult& c : result.customers) {
        const billing::CustomerQuote& q = c.quote;
        if (!q.errors.empty()) {
            rows.push_back({q.customer, q.customer_name, std::to_string(q.calls_current), "",
                            q.no_usage ? "no usage" : "NOT COMPARED", "", "", ""});
            continue;
        }
        rows.push_back({q.customer, q.customer_name, std::to_string(q.calls_current), std::string(q.currency.code()),
                        Money(q.total.current), Money(q.total.candidate), Signed(q.total.difference),
                        Change(q.total.change)});
    }
    for (const billing::BookTotal& t : result.book.totals) {
        rows.push_back({"book total", std::to_string(t.customers) + " customers", "", std::string(t.currency.code()),
                        Money(t.total.current), Money(t.total.candidate), Signed(t.total.difference),
                        Change(t.total.change)});
    }
    Table(out, rows, 2);
    for (const QuoteCustomerResult& c : result.customers) {
        if (!c.quote.no_usage) {
            for (const std::string& e : c.quote.errors)
                out << "  NOT COMPARED: " << c.quote.customer << ": " << e << "\n";
        }
        WriteRejected(out, c.rejected);
    }
    if (result.book.customers_not_compared > 0) {
        out << "  the book total leaves out the " << result.book.customers_not_compared
            << " customer(s) not compared\n";
    }
}

}  // namespace

int RunQuote(const QuoteOptions& o, std::ostream& out, std::ostream& err) {
    QuoteResult result;
    if (const int code = ComputeQuote(o, &result, err); code != kExitOk) return code;
    if (o.format == "json") {
        out << quoting::QuoteJson(result, o.period);
    } else if (o.all_customers) {
        WriteBookTable(out, result, o.period);
    } else {
        for (const QuoteCustomerResult& c : result.customers) WriteCustomerTable(out, result, c);
    }
    size_t refused = 0, rejected = 0, unpriced = 0;
    for (const QuoteCustomerResult& c : result.customers) {
        if (c.archive_incomplete) {
            ++refused;
            for (const std::string& e : c.quote.errors) err << "tally quote: " << e << "\n";
        } else if (!c.quote.errors.empty() && !c.quote.no_usage) {
            ++unpriced;
        }
        rejected += c.rejected.size();
    }
    if (refused > 0) {
        err << "tally quote: " << refused << " customer(s) refused: their archive does not hold every billed call\n";
        return kExitFailure;
    }
    if (rejected > 0 || unpriced > 0) {
        err << "tally quote: " << rejected << " call(s) of the period could not be priced under the candidate and "
            << unpriced << " customer(s) could not be compared (listed in the output)\n";
        return kExitPartial;
    }
    return kExitOk;
}

}  // namespace tally

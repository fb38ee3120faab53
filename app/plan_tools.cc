// `tally plan show`, `tally plan diff` and `tally plan try`: seeing,
// comparing and testing a plan file before it is published
// (docs/plan-format.md, "Seeing, comparing and testing a plan"). The price
// table is pricing/price_table.h's (CellRate, the rule invoices are priced
// by), the diff pricing/plan_diff.h's, and a tried call goes through
// `tally rate`'s own pipeline (ingest/file_rater.h: the consumer's
// validation and the rater) and is priced by CellRate and Rate::AmountFor
// as invoice lines are.
#include <date/date.h>
#include <date/tz.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "app/commands.h"
#include "app/report.h"
#include "app/text_table.h"
#include "app/with_database.h"
#include "base/assert.h"
#include "ingest/file_rater.h"
#include "ledger/store.h"
#include "pricing/invoice.h"
#include "pricing/plan_diff.h"
#include "pricing/plan_yaml.h"
#include "pricing/price_table.h"

namespace tally {

namespace {

// ---------------------------------------------------------------- common

std::string PerText(int64_t per) {
    switch (per) {
        case 1: return "1";
        case 1000: return "1K";
        case 1000000: return "1M";
        default: return std::to_string(per);
    }
}

// "per 1,000,000 units (1M)".
std::string PerWords(int64_t per) {
    std::string digits = std::to_string(per), grouped;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
        grouped += digits[i];
    }
    return per == 1 ? "per unit" : "per " + grouped + " units";
}

// RFC 4180, and a text a spreadsheet would run as a formula gets a leading
// ' (as the invoice and margin CSV exports do). Rates and numbers never
// start with = + - @, so they pass unchanged.
std::string Csv(std::string_view s) {
    auto plain_number = [](std::string_view t) {
        if (!t.empty() && (t.front() == '-' || t.front() == '+')) t.remove_prefix(1);
        return !t.empty() && t.find_first_not_of("0123456789.") == std::string_view::npos;
    };
    const bool formula =
        !s.empty() && std::string_view("=+-@\t\r").find(s.front()) != std::string_view::npos && !plain_number(s);
    if (!formula && s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
    std::string out = formula ? "\"'" : "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

struct LoadedPlan {
    Plan plan;
    UnitTable units;
};

// Parses one plan file, printing every diagnostic (warnings too) on err.
// With `published` (the ledger's plans), a version may extend a published
// version of its plan, as a publish parses it.
std::optional<LoadedPlan> LoadPlanFile(const std::string& file, std::ostream& err,
                                       const Catalog* published = nullptr) {
    std::string text, error;
    if (!ReadFile(file, &text, &error)) {
        err << "tally: " << error << "\n";
        return std::nullopt;
    }
    LoadedPlan loaded;
    if (published != nullptr) loaded.units = published->units;
    Diagnostics diagnostics;
    auto plan = ParsePlan(text, file, &loaded.units, &diagnostics, published);
    for (const auto& d : diagnostics) err << d.ToString() << "\n";
    if (!plan) {
        const size_t errors = CountErrors(diagnostics);
        err << file << ": " << errors << (errors == 1 ? " problem" : " problems")
            << "; the plan cannot be used until they are fixed (tally plan validate " << file << ")\n";
        return std::nullopt;
    }
    loaded.plan = std::move(*plan);
    return loaded;
}

std::string VersionIds(const Plan& plan) {
    std::string out;
    for (const auto& v : plan.versions) out += (out.empty() ? "" : ", ") + v.id;
    return out;
}

// The index of version `id` of `plan`, or nullopt with the reason on err.
std::optional<size_t> FindVersion(const Plan& plan, const std::string& id, const std::string& where, std::ostream& err,
                                  const char* command) {
    for (size_t i = 0; i < plan.versions.size(); ++i) {
        if (plan.versions[i].id == id) return i;
    }
    err << "tally plan " << command << ": " << where << " has no version '" << id
        << "' (its versions: " << VersionIds(plan) << ")\n";
    return std::nullopt;
}

// The versions --version / --at pick (every version when neither), or
// nullopt with the reason on err.
std::optional<std::vector<size_t>> PickVersions(const LoadedPlan& p, const std::string& file,
                                                const std::string& version, const std::string& at, std::ostream& err,
                                                const char* command) {
    if (!version.empty() && !at.empty()) {
        err << "tally plan " << command << ": give --version or --at, not both\n";
        return std::nullopt;
    }
    if (!version.empty()) {
        auto i = FindVersion(p.plan, version, file, err, command);
        if (!i) return std::nullopt;
        return std::vector<size_t>{*i};
    }
    if (!at.empty()) {
        auto instant = ParseRfc3339(at);
        if (!instant) {
            err << "tally plan " << command << ": --at must be an RFC 3339 instant (2025-11-01T00:00:00+08:00), not '"
                << at << "'\n";
            return std::nullopt;
        }
        const int i = p.plan.VersionIndexAt(*instant);
        if (i < 0) {
            err << "tally plan " << command << ": no version of " << file << " is in force at " << at
                << " (its versions: " << VersionIds(p.plan) << ")\n";
            return std::nullopt;
        }
        return std::vector<size_t>{static_cast<size_t>(i)};
    }
    std::vector<size_t> all(p.plan.versions.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
}

// An instant in UTC and, when the version's zone is another, in that zone
// as the plan file may have written it: "2025-07-27T16:00:00Z
// (2025-07-28T00:00:00+08:00)".
std::string InstantText(Instant t, const PlanVersion& v) {
    std::string out = FormatRfc3339(t);
    if (v.zone == nullptr || v.zone_name == "UTC" || v.zone_name == "Etc/UTC") return out;
    const auto local = date::make_zoned(v.zone, std::chrono::time_point_cast<std::chrono::seconds>(t));
    return out + " (" + date::format("%FT%T%Ez", local) + ")";
}

std::string VersionSpan(const Plan& plan, size_t i) {
    const PlanVersion& v = plan.versions[i];
    std::string out = "from " + InstantText(v.effective_from, v);
    if (v.effective_until) {
        out += " until " + InstantText(*v.effective_until, v);
    } else if (i + 1 < plan.versions.size()) {
        out += " until " + InstantText(plan.versions[i + 1].effective_from, v) + " (version " +
               plan.versions[i + 1].id + ")";
    } else {
        out += ", no end";
    }
    return out;
}

// ------------------------------------------------------------------ show

std::string Clock(int minute) {
    char text[32];
    std::snprintf(text, sizeof text, "%02d:%02d", minute / 60, minute % 60);
    return text;
}

std::string OffsetText(std::chrono::seconds offset) {
    const int64_t s = offset.count();
    const int64_t a = s < 0 ? -s : s;
    char text[32];
    std::snprintf(text, sizeof text, "UTC%c%02d:%02d", s < 0 ? '-' : '+', static_cast<int>(a / 3600),
                  static_cast<int>(a / 60 % 60));
    return text;
}

std::string DateText(date::sys_seconds t) {
    return date::format("%F", t);
}

// "00:30-08:30 Asia/Shanghai = 16:30-00:30 UTC (UTC+08:00 all year from
// 2025-07-28)", or one UTC span per offset the zone has in the year from
// `from` on (daylight saving), each with the date it starts.
std::string WindowHours(const Window& w, const PlanVersion& v) {
    const date::time_zone* zone = w.zone != nullptr ? w.zone : v.zone;
    const std::string zone_name = w.zone != nullptr ? w.zone_name : v.zone_name + " (the plan's zone)";
    std::string out = Clock(w.start_minute) + "-" + Clock(w.end_minute) + " " + zone_name;
    if (zone == nullptr) return out;
    const date::sys_seconds begin = std::chrono::time_point_cast<std::chrono::seconds>(v.effective_from);
    const date::sys_seconds end = begin + std::chrono::days(366);
    struct Span {
        std::chrono::seconds offset;
        date::sys_seconds from;
    };
    std::vector<Span> spans;
    for (date::sys_seconds t = begin; t < end;) {
        const date::sys_info info = zone->get_info(t);
        if (spans.empty() || spans.back().offset != info.offset) spans.push_back({info.offset, t});
        if (info.end <= t) break;
        t = info.end;
    }
    auto utc = [&](std::chrono::seconds offset) {
        const int64_t shift = offset.count() / 60;
        auto at = [&](int minute) { return Clock(static_cast<int>(((minute - shift) % 1440 + 1440) % 1440)); };
        return at(w.start_minute) + "-" + at(w.end_minute) + " UTC";
    };
    if (spans.size() == 1) {
        return out + " = " + utc(spans[0].offset) + " (" + OffsetText(spans[0].offset) + " all year from " +
               DateText(begin) + ")";
    }
    out += " = ";
    for (size_t i = 0; i < spans.size(); ++i) {
        out += (i > 0 ? "; " : "") + utc(spans[i].offset) + " (" + OffsetText(spans[i].offset) + " from " +
               DateText(spans[i].from) + ")";
    }
    return out;
}

std::string WindowDays(const Window& w) {
    static constexpr const char* kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    if (w.weekdays == 0x7f) return "every day";
    std::string days;
    for (int d = 0; d < 7; ++d) {
        if ((w.weekdays & (1u << d)) != 0) days += (days.empty() ? "" : ",") + std::string(kDays[d]);
    }
    return days + " (local days; a window past midnight belongs to the day it starts)";
}

std::string WindowPrice(const ModelPricing& m, size_t window, const UnitTable& units) {
    TALLY_ASSERT(window < m.windows.size());
    const Window& w = m.windows[window];
    std::string text;
    if (w.multiplier) {
        text = "multiplier " + w.multiplier->ToString() + " on the cell's rates";
    } else if (!w.band_rates.empty()) {
        text = "own rates per band (window_rates in each band)";
    } else {
        std::string rates;
        for (int i = 0; i < kMaxUnits; ++i) {
            if (w.rates.Has(static_cast<UnitId>(i))) {
                rates += (rates.empty() ? "" : ", ") + units.Name(static_cast<UnitId>(i));
            }
        }
        text = "own rates (" + rates + ")";
    }
    size_t conditions = 0;
    for (const Band& b : m.bands) {
        for (const OutputCondition& c : b.output_conditions) {
            const RateTable* t = c.WindowRatesFor(window);
            if (t != nullptr && !t->Empty()) ++conditions;
        }
    }
    if (conditions > 0) {
        text += "; " + std::to_string(conditions) + " output condition" + (conditions == 1 ? "" : "s") +
                " with rates of their own in it";
    }
    return text;
}

// The `per` most rates of `table` are quoted in (the sheet's unit).
int64_t CommonPer(const std::vector<PriceCell>& table) {
    std::map<int64_t, size_t> count;
    for (const PriceCell& c : table) {
        for (const PriceCellRate& r : c.rates) {
            if (r.rate) ++count[r.rate->per()];
        }
    }
    int64_t best = Rate::kPerDefault;
    size_t most = 0;
    for (const auto& [per, n] : count) {
        if (n > most) best = per, most = n;
    }
    return best;
}

std::string CellRateText(const PriceCellRate& r, int64_t per) {
    if (!r.rate) return "none";
    return r.rate->price().ToString() + (r.rate->per() == per ? "" : "/" + PerText(r.rate->per()));
}

constexpr const char* kBatchCache[] = {"discounted", "full_cache_rate", "not_combined"};

std::string ModelHeading(const ModelPricing& m) {
    std::string out =
        "model " + m.name + ": " + std::to_string(m.bands.size()) + (m.bands.size() == 1 ? " band" : " bands");
    if (m.bands.size() > 1) {
        out += std::string(" by ") + (m.band_by == BandBy::kPrompt ? "prompt" : "uncached_input") + ", " +
               (m.band_mode == BandMode::kGraduated ? "graduated" : "whole call") + ", above the top band " +
               (m.above_top == AboveTop::kReject ? "rejected" : "billed in the top band");
    }
    if (m.batch.priced) {
        out += "; batch " + (m.batch.multiplier ? "x" + m.batch.multiplier->ToString() : std::string("own rates")) +
               ", cache hits " + kBatchCache[static_cast<int>(m.batch.cache_hits)];
    }
    if (m.routed_calls == RoutedCalls::kBillServed) out += "; routed calls billed as the served model";
    return out;
}

void ShowVersionTable(std::ostream& out, const Plan& plan, size_t vi, const UnitTable& units) {
    const PlanVersion& v = plan.versions[vi];
    const std::vector<PriceCell> table = ResolvePriceTable(v, units);
    const int64_t per = CommonPer(table);
    out << "version " << v.id << ": " << VersionSpan(plan, vi)
        << (v.extends.empty() ? std::string() : "; written as changes to version " + v.extends + " (resolved below)")
        << "\n";
    out << "  " << v.currency.code() << ", time zone " << v.zone_name << ", rounding " << RoundingModeName(v.rounding)
        << " at " << RoundingPlaceName(v.rounding_place) << ", tax " << v.tax_percent.ToString() << "%, "
        << (v.minimum_commitment ? "minimum commitment " + v.minimum_commitment->ToString() + " per period"
                                 : std::string("no minimum commitment"))
        << ", finalize_grace " << FormatDuration(v.finalize_grace) << "\n";
    out << "  rates in " << v.currency.code() << " " << PerWords(per) << " (tokens, or the unit's own count)"
        << "; a rate written x/1K is per 1,000; none: no rate prices the unit in that cell\n";
    if (!v.tiers.empty() || !v.free_quotas.empty()) {
        out << "  " << v.tiers.size() << " tier rule(s) and " << v.free_quotas.size()
            << " free quota(s) apply over each period, on top of these rates\n";
    }
    for (size_t mi = 0; mi < v.models.size(); ++mi) {
        const ModelPricing& m = v.models[mi];
        out << "\n  " << ModelHeading(m) << "\n";
        // Columns: the model's units in table order.
        std::vector<std::string> unit_names;
        for (const PriceCell& c : table) {
            if (c.model != m.name) continue;
            for (const PriceCellRate& r : c.rates) {
                if (std::find(unit_names.begin(), unit_names.end(), r.unit_name) == unit_names.end()) {
                    unit_names.push_back(r.unit_name);
                }
            }
        }
        std::vector<std::vector<std::string>> rows = {{"band", "output", "window", "batch", "thinking"}};
        for (const auto& u : unit_names) rows.front().push_back(u);
        std::vector<bool> right(5, false);
        right.resize(rows.front().size(), true);
        for (const PriceCell& c : table) {
            if (c.model != m.name) continue;
            std::vector<std::string> row = {c.band, c.output_condition.empty() ? "-" : c.output_condition,
                                            c.window.empty() ? "-" : c.window, c.batch ? "batch" : "-",
                                            c.thinking ? "thinking" : "-"};
            for (const auto& u : unit_names) {
                auto r = std::find_if(c.rates.begin(), c.rates.end(),
                                      [&](const PriceCellRate& x) { return x.unit_name == u; });
                // A unit a call of this cell cannot bill (cache hits of a batch
                // call whose batch does not combine with the cache).
                row.push_back(r == c.rates.end() ? "n/a" : CellRateText(*r, per));
            }
            rows.push_back(std::move(row));
        }
        WriteTextTable(out, rows, right);
        for (size_t wi = 0; wi < m.windows.size(); ++wi) {
            const Window& w = m.windows[wi];
            out << "  window " << w.name << ": " << WindowHours(w, v) << ", " << WindowDays(w) << "; "
                << WindowPrice(m, wi, units) << "\n";
        }
    }
}

void ShowJson(std::ostream& out, const LoadedPlan& p, const std::vector<size_t>& versions) {
    out << "{\"plan\":" << JsonString(p.plan.name) << ",\"name\":" << JsonString(p.plan.display_name)
        << ",\"versions\":[";
    for (size_t k = 0; k < versions.size(); ++k) {
        const PlanVersion& v = p.plan.versions[versions[k]];
        out << (k > 0 ? "," : "") << "{\"id\":" << JsonString(v.id) << ",\"extends\":"
            << (v.extends.empty() ? std::string("null") : JsonString(v.extends)) << ",\"effective_from\":" << JsonString(FormatRfc3339(v.effective_from)) << ",\"effective_until\":"
            << (v.effective_until ? JsonString(FormatRfc3339(*v.effective_until)) : std::string("null"))
            << ",\"currency\":" << JsonString(v.currency.code()) << ",\"zone\":" << JsonString(v.zone_name)
            << ",\"rounding\":" << JsonString(RoundingModeName(v.rounding))
            << ",\"round_at\":" << JsonString(RoundingPlaceName(v.rounding_place))
            << ",\"tax_percent\":" << JsonString(v.tax_percent.ToString()) << ",\"minimum_commitment\":"
            << (v.minimum_commitment ? JsonString(v.minimum_commitment->ToString()) : std::string("null"))
            << ",\"windows\":[";
        bool first = true;
        for (const ModelPricing& m : v.models) {
            for (const Window& w : m.windows) {
                out << (first ? "" : ",") << "{\"model\":" << JsonString(m.name) << ",\"name\":" << JsonString(w.name)
                    << ",\"start\":" << JsonString(Clock(w.start_minute))
                    << ",\"end\":" << JsonString(Clock(w.end_minute))
                    << ",\"zone\":" << JsonString(w.zone != nullptr ? w.zone_name : v.zone_name)
                    << ",\"hours\":" << JsonString(WindowHours(w, v)) << ",\"days\":" << JsonString(WindowDays(w))
                    << "}";
                first = false;
            }
        }
        out << "],\"cells\":[";
        const std::vector<PriceCell> table = ResolvePriceTable(v, p.units);
        for (size_t i = 0; i < table.size(); ++i) {
            const PriceCell& c = table[i];
            out << (i > 0 ? "," : "") << "{\"model\":" << JsonString(c.model) << ",\"band\":" << JsonString(c.band)
                << ",\"output_condition\":" << JsonString(c.output_condition) << ",\"window\":" << JsonString(c.window)
                << ",\"batch\":" << (c.batch ? "true" : "false") << ",\"thinking\":" << (c.thinking ? "true" : "false")
                << ",\"rates\":[";
            for (size_t r = 0; r < c.rates.size(); ++r) {
                const PriceCellRate& rate = c.rates[r];
                out << (r > 0 ? "," : "") << "{\"unit\":" << JsonString(rate.unit_name);
                if (rate.rate) {
                    out << ",\"rate\":" << JsonString(rate.rate->price().ToString()) << ",\"per\":" << rate.rate->per()
                        << "}";
                } else {
                    out << ",\"rate\":null,\"per\":null}";
                }
            }
            out << "]}";
        }
        out << "]}";
    }
    out << "]}\n";
}

void ShowCsv(std::ostream& out, const LoadedPlan& p, const std::vector<size_t>& versions) {
    out << "plan,version,effective_from,currency,model,band,output_condition,window,batch,thinking,unit,rate,per\n";
    for (size_t vi : versions) {
        const PlanVersion& v = p.plan.versions[vi];
        for (const PriceCell& c : ResolvePriceTable(v, p.units)) {
            for (const PriceCellRate& r : c.rates) {
                out << Csv(p.plan.name) << "," << Csv(v.id) << "," << FormatRfc3339(v.effective_from) << ","
                    << v.currency.code() << "," << Csv(c.model) << "," << Csv(c.band) << "," << Csv(c.output_condition)
                    << "," << Csv(c.window) << "," << (c.batch ? "true" : "false") << ","
                    << (c.thinking ? "true" : "false") << "," << Csv(r.unit_name) << ","
                    << (r.rate ? r.rate->price().ToString() : "") << ","
                    << (r.rate ? std::to_string(r.rate->per()) : "") << "\n";
            }
        }
    }
}

struct ShowOptions {
    std::string file, version, at;
    std::string format = "table";
};

int RunPlanShow(const ShowOptions& o, std::ostream& out, std::ostream& err) {
    if (o.format != "table" && o.format != "json" && o.format != "csv") {
        err << "tally plan show: --format must be table, json or csv, not '" << o.format << "'\n";
        return kExitUsage;
    }
    auto p = LoadPlanFile(o.file, err);
    if (!p) return kExitFailure;
    auto versions = PickVersions(*p, o.file, o.version, o.at, err, "show");
    if (!versions) return kExitUsage;
    if (o.format == "json") {
        ShowJson(out, *p, *versions);
    } else if (o.format == "csv") {
        ShowCsv(out, *p, *versions);
    } else {
        out << "plan " << p->plan.name << " (" << p->plan.display_name << "), " << o.file << "\n";
        for (size_t k = 0; k < versions->size(); ++k) {
            out << "\n";
            ShowVersionTable(out, p->plan, (*versions)[k], p->units);
        }
    }
    return kExitOk;
}

// ------------------------------------------------------------------ diff

std::string RateJson(const std::optional<Rate>& r) {
    if (!r) return "null";
    return "{\"rate\":" + JsonString(r->price().ToString()) + ",\"per\":" + std::to_string(r->per()) + "}";
}

std::string RateCell(const std::optional<Rate>& r) {
    if (!r) return "-";
    return r->price().ToString() + "/" + PerText(r->per());
}

struct DiffSide {
    std::string plan, version, source;
};

struct DiffOptions {
    std::vector<std::string> files;
    std::string published;  // a published plan's name: the old side
    std::string database_url;
    std::string old_version, new_version;
    std::string format = "table";
};

int RunPlanDiff(const DiffOptions& o, std::ostream& out, std::ostream& err) {
    if (o.format != "table" && o.format != "json") {
        err << "tally plan diff: --format must be table or json, not '" << o.format << "'\n";
        return kExitUsage;
    }
    const bool published = !o.published.empty();
    if (published ? o.files.size() != 1 : (o.files.empty() || o.files.size() > 2)) {
        err << "tally plan diff: give OLD.yaml NEW.yaml, one file with --old-version and --new-version, or "
               "--published PLAN NEW.yaml\n";
        return kExitUsage;
    }
    ingest::CatalogSnapshot snapshot;
    if (published) {
        const int code = WithDatabase("plan diff", o.database_url, err, [&](const std::string& url) {
            ledger::Store store(url);
            snapshot = store.Load();
            return kExitOk;
        });
        if (code != kExitOk) return code;
    }
    // The new side: the last file (against the published plans with
    // --published: its versions may extend a published one).
    auto fresh = LoadPlanFile(o.files.back(), err, published ? &snapshot.catalog : nullptr);
    if (!fresh) return kExitFailure;
    std::optional<LoadedPlan> old_file;
    const Plan* old_plan = nullptr;
    const UnitTable* old_units = nullptr;
    std::string old_source;
    if (published) {
        old_plan = snapshot.catalog.FindPlan(o.published);
        if (old_plan == nullptr) {
            err << "tally plan diff: no published plan '" << o.published << "'\n";
            return kExitFailure;
        }
        old_units = &snapshot.catalog.units;
        old_source = "published";
    } else if (o.files.size() == 2) {
        old_file = LoadPlanFile(o.files.front(), err);
        if (!old_file) return kExitFailure;
        old_plan = &old_file->plan;
        old_units = &old_file->units;
        old_source = o.files.front();
    } else {
        old_plan = &fresh->plan;
        old_units = &fresh->units;
        old_source = o.files.front();
    }
    const Plan& new_plan = fresh->plan;
    const bool same_file = !published && o.files.size() == 1;
    if (same_file && (o.old_version.empty() || o.new_version.empty()) && new_plan.versions.size() < 2) {
        err << "tally plan diff: " << o.files.front() << " has one version; give a second file, or --published "
            << new_plan.name << " to compare with what is published\n";
        return kExitUsage;
    }
    // Defaults: the latest version of each side; of one file, its last two.
    size_t new_index = new_plan.versions.size() - 1;
    if (!o.new_version.empty()) {
        auto i = FindVersion(new_plan, o.new_version, o.files.back(), err, "diff");
        if (!i) return kExitUsage;
        new_index = *i;
    }
    // Of one file, the version before the new one.
    if (same_file && o.old_version.empty() && new_index == 0) {
        err << "tally plan diff: version " << new_plan.versions[0].id << " is the first of " << o.files.front()
            << "; give --old-version\n";
        return kExitUsage;
    }
    size_t old_index = same_file ? new_index - 1 : old_plan->versions.size() - 1;
    if (!o.old_version.empty()) {
        auto i = FindVersion(*old_plan, o.old_version, old_source, err, "diff");
        if (!i) return kExitUsage;
        old_index = *i;
    }
    const PlanVersion& ov = old_plan->versions[old_index];
    const PlanVersion& nv = new_plan.versions[new_index];
    const PlanVersionDiff diff = DiffPlanVersions(ov, *old_units, nv, fresh->units);
    const DiffSide old_side{old_plan->name, ov.id, old_source}, new_side{new_plan.name, nv.id, o.files.back()};
    if (o.format == "json") {
        WritePlanDiffJson(out, old_side.plan, old_side.version, old_side.source, new_side.plan, new_side.version,
                          new_side.source, diff);
    } else {
        out << "plan " << old_side.plan << " version " << old_side.version << " (" << old_side.source << ") -> plan "
            << new_side.plan << " version " << new_side.version << " (" << new_side.source << ")\n";
        WritePlanDiffTable(out, diff, nv.currency);
    }
    return kExitOk;
}

// ------------------------------------------------------------------- try

struct TryOptions {
    std::string file;
    std::vector<std::string> events;  // --event JSON texts
    std::string events_file;          // --events FILE
    std::string format = "table";
};

std::string CellText(const TriedLine& l) {
    std::string c = "band " + l.band;
    if (!l.output_condition.empty()) c += ", " + l.output_condition;
    if (!l.window.empty()) c += ", window " + l.window;
    if (l.batch) c += ", batch";
    if (l.thinking) c += ", thinking";
    return c;
}

void TryTable(std::ostream& out, const std::vector<TriedCall>& calls) {
    for (const TriedCall& call : calls) {
        out << call.where << ":";
        if (call.rejected) {
            out << " rejected (" << call.reason_code << "): " << call.reason << "\n\n";
            continue;
        }
        if (!call.duplicate_of.empty()) {
            out << " a repeat of " << call.duplicate_of << " (same source and id): billed once, not again\n\n";
            continue;
        }
        out << " customer " << call.customer << ", plan " << call.plan << " version " << call.version << "\n";
        std::vector<std::vector<std::string>> rows = {{"model", "cell", "unit", "quantity", "rate", "amount"}};
        for (const TriedLine& l : call.lines) {
            rows.push_back({l.model, CellText(l), l.unit, std::to_string(l.quantity),
                            l.rate ? l.rate->price().ToString() + "/" + PerText(l.rate->per()) : "none",
                            l.rate ? l.amount.ToString() : "not priced"});
        }
        WriteTextTable(out, rows, {false, false, false, true, true, true});
        for (const TriedLine& l : call.lines) {
            if (!l.rate) {
                out << "  " << l.unit << ": no rate of the cell prices it; the invoice would not be priced\n";
                continue;
            }
            out << "  " << l.unit << ": " << l.quantity << " x " << l.rate->price().ToString() << " / " << l.rate->per()
                << " = " << l.amount.ToString() << "\n";
        }
        out << "  call total " << call.total.ToString() << " " << call.currency
            << " (exact; the invoice rounds the period's sum to the currency's minor unit)\n\n";
    }
}

void TryJson(std::ostream& out, const std::vector<TriedCall>& calls) {
    out << "{\"calls\":[";
    for (size_t i = 0; i < calls.size(); ++i) {
        const TriedCall& c = calls[i];
        out << (i > 0 ? "," : "") << "{\"event\":" << JsonString(c.where);
        if (c.rejected) {
            out << ",\"status\":\"rejected\",\"reason_code\":" << JsonString(c.reason_code)
                << ",\"reason\":" << JsonString(c.reason) << "}";
            continue;
        }
        if (!c.duplicate_of.empty()) {
            out << ",\"status\":\"duplicate\",\"duplicate_of\":" << JsonString(c.duplicate_of) << "}";
            continue;
        }
        out << ",\"status\":\"priced\",\"customer\":" << JsonString(c.customer) << ",\"plan\":" << JsonString(c.plan)
            << ",\"version\":" << JsonString(c.version) << ",\"currency\":" << JsonString(c.currency) << ",\"lines\":[";
        for (size_t k = 0; k < c.lines.size(); ++k) {
            const TriedLine& l = c.lines[k];
            out << (k > 0 ? "," : "") << "{\"model\":" << JsonString(l.model) << ",\"band\":" << JsonString(l.band)
                << ",\"output_condition\":" << JsonString(l.output_condition) << ",\"window\":" << JsonString(l.window)
                << ",\"batch\":" << (l.batch ? "true" : "false") << ",\"thinking\":" << (l.thinking ? "true" : "false")
                << ",\"unit\":" << JsonString(l.unit) << ",\"quantity\":" << l.quantity
                << ",\"rate\":" << RateJson(l.rate)
                << ",\"amount\":" << (l.rate ? JsonString(l.amount.ToString()) : std::string("null")) << "}";
        }
        out << "],\"total\":" << JsonString(c.total.ToString()) << "}";
    }
    out << "]}\n";
}

int RunPlanTry(const TryOptions& o, std::ostream& out, std::ostream& err) {
    if (o.format != "table" && o.format != "json") {
        err << "tally plan try: --format must be table or json, not '" << o.format << "'\n";
        return kExitUsage;
    }
    if (o.events.empty() == o.events_file.empty()) {
        err << "tally plan try: give --event '{...}' (repeatable) or --events FILE (one JSON event per line), "
               "one of the two\n";
        return kExitUsage;
    }
    std::vector<EventText> texts;
    if (!o.events_file.empty()) {
        std::ifstream in(o.events_file, std::ios::binary);
        if (!in) {
            err << "tally: " << o.events_file << ": cannot open the event file\n";
            return kExitFailure;
        }
        int64_t line_no = 0;
        std::string line;
        while (std::getline(in, line)) {
            ++line_no;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.find_first_not_of(" \t") == std::string::npos) continue;
            texts.push_back({o.events_file + ":" + std::to_string(line_no), std::move(line)});
        }
        if (in.bad()) {
            err << "tally: " << o.events_file << ": read error at line " << line_no << "\n";
            return kExitFailure;
        }
    } else {
        for (size_t i = 0; i < o.events.size(); ++i) texts.push_back({"event " + std::to_string(i + 1), o.events[i]});
    }
    auto catalog = LoadCatalog({o.file}, err);
    if (!catalog) return kExitFailure;
    const std::vector<TriedCall> calls = TryCalls(*catalog, texts);
    if (o.format == "json") {
        TryJson(out, calls);
    } else {
        TryTable(out, calls);
    }
    size_t rejected = 0, unpriced = 0;
    for (const TriedCall& c : calls) {
        if (c.rejected) ++rejected;
        for (const TriedLine& l : c.lines) unpriced += l.rate ? 0u : 1u;
    }
    if (rejected > 0) err << "tally plan try: " << rejected << " of " << calls.size() << " calls were rejected\n";
    if (unpriced > 0) err << "tally plan try: " << unpriced << " line(s) have no rate\n";
    return rejected == 0 && unpriced == 0 ? kExitOk : kExitPartial;
}

constexpr const char* kShowHelp = R"(
Examples:
  tally plan show deploy/plans/qwen-plus.yaml
  tally plan show deploy/plans/deepseek.yaml --version 2025-09-v3.1
  tally plan show deploy/plans/deepseek.yaml --at 2025-08-01T00:00:00Z --format csv > deepseek.csv
  tally plan show deploy/plans/doubao-seed-1.6.yaml --format json

Every cell (model x band x output condition x window x batch x thinking) with
the rate of each unit, as invoices price it; every window with its hours in
its zone and in UTC. Without --version or --at: every version of the file.)";

constexpr const char* kDiffHelp = R"(
Examples:
  tally plan diff old/deepseek.yaml deploy/plans/deepseek.yaml
  tally plan diff deploy/plans/deepseek.yaml      (its last two versions)
  tally plan diff deploy/plans/deepseek.yaml --old-version 2025-02-off-peak --new-version 2025-09-v3.1
  tally plan diff --published deepseek deepseek-cut.yaml --database-url postgresql://...

Every cell whose rate changed (old, new, change in %, exact, rounded half-even
to 2 places; new / removed when one side lacks it), models added or removed,
and changed terms. Default versions: the latest of each side. Exit 0 whether
or not there are changes.)";

constexpr const char* kTryHelp = R"(
Examples:
  tally plan try deploy/plans/qwen-plus.yaml --event '{"specversion":"1.0","id":"t1","source":"try","type":"llm.call","time":"2025-11-02T10:00:00+08:00","subject":"c","data":{"model":"qwen-plus","input_tokens":50000,"output_tokens":1000,"cached_input_tokens":20000}}'
  tally plan try deploy/plans/deepseek.yaml --events deploy/events/deepseek.jsonl --format json

Each call as `tally rate` and the consumer read it (docs/event-format.md):
its lines (model, cell, unit, quantity, rate, amount = quantity x rate / per)
and its total; a rejected call says why, with its dead letter's reason.
Period tiers and free quotas are not applied to a single call.
Exit codes: 0 ok, 1 failure, 2 usage error, 3 some calls rejected or not priced.)";

}  // namespace

std::vector<TriedCall> TryCalls(const Catalog& catalog, const std::vector<EventText>& events) {
    TALLY_ASSERT(!catalog.plans.empty());
    const std::string plan = catalog.plans.front().name;
    ingest::CatalogSnapshot snapshot{catalog, {}, {}};
    ingest::AssemblerOptions options;
    options.known_customers_only = false;
    // Repeats of one call across the lines: the whole file once through the
    // pipeline, as `tally rate` reads it.
    std::map<int64_t, int64_t> repeat_of;  // line index -> index of the line billed
    // Calls the whole file rejects: a conflicting repeat (same source and
    // id, another payload) is rejected only when read with its first.
    std::map<int64_t, const ingest::RejectedAt*> rejected_in_file;
    ingest::FileRater::Result whole;
    {
        ingest::FileRater all(snapshot, plan, options);
        for (size_t i = 0; i < events.size(); ++i) all.Add(0, static_cast<int64_t>(i) + 1, events[i].json);
        whole = all.Finish();
        for (const ingest::DuplicateAt& d : whole.duplicates) repeat_of[d.at.line - 1] = d.first.line - 1;
        for (const ingest::RejectedAt& r : whole.rejected) rejected_in_file[r.at.line - 1] = &r;
    }
    std::vector<TriedCall> calls;
    for (size_t i = 0; i < events.size(); ++i) {
        TriedCall call;
        call.where = events[i].where;
        if (auto r = repeat_of.find(static_cast<int64_t>(i)); r != repeat_of.end()) {
            call.duplicate_of = events[static_cast<size_t>(r->second)].where;
            calls.push_back(std::move(call));
            continue;
        }
        if (auto r = rejected_in_file.find(static_cast<int64_t>(i)); r != rejected_in_file.end()) {
            call.rejected = true;
            call.reason_code = std::string(RejectReasonCode(r->second->code));
            call.reason = r->second->reason;
            calls.push_back(std::move(call));
            continue;
        }
        ingest::FileRater one(snapshot, plan, options);
        one.Add(0, 1, events[i].json);
        ingest::FileRater::Result result = one.Finish();
        if (!result.rejected.empty()) {
            call.rejected = true;
            call.reason_code = std::string(RejectReasonCode(result.rejected.front().code));
            call.reason = result.rejected.front().reason;
            calls.push_back(std::move(call));
            continue;
        }
        for (const Rollup& r : result.rollups) {
            const Plan& p = snapshot.catalog.plans[r.cell.plan];
            const PlanVersion& v = p.versions[r.cell.version];
            const ModelPricing& m = v.models[r.cell.model];
            call.customer = r.customer;
            call.plan = p.name;
            call.version = v.id;
            call.currency = std::string(v.currency.code());
            if (call.lines.empty()) call.total = Amount::Zero(v.currency);
            for (UnitId u = 0; u < kMaxUnits; ++u) {
                const int64_t qty = r.quantities[u];
                if (qty == 0) continue;
                TriedLine line;
                line.model = m.name;
                line.band = m.BandLabel(r.cell.band);
                if (r.cell.condition != kNone) {
                    const Band& band = m.bands[r.cell.band];
                    line.output_condition = OutputConditionLabel(band.output_conditions[r.cell.condition]);
                }
                if (r.cell.window != kNone) line.window = m.windows[r.cell.window].name;
                line.batch = (r.cell.flags & kFlagBatch) != 0;
                line.thinking = (r.cell.flags & kFlagThinking) != 0;
                line.unit = snapshot.catalog.units.Name(u);
                line.quantity = qty;
                // The rule invoice lines are priced by (pricing/invoice.cc).
                line.rate = CellRate(m, r.cell, u);
                if (line.rate) {
                    try {
                        line.amount = line.rate->AmountFor(qty, v.currency, RoundingMode::kHalfEven);
                        call.total += line.amount;
                    } catch (const OverflowError& e) {
                        // As `tally rate` says it: not priced, the other calls are.
                        call.rejected = true;
                        call.reason_code = "not_priced";
                        call.reason = std::string("not priced: ") + e.what();
                    }
                }
                call.lines.push_back(std::move(line));
            }
        }
        TALLY_ASSERT(!call.plan.empty());
        if (call.rejected) call.lines.clear();  // an amount overflowed: the call is not priced
        calls.push_back(std::move(call));
    }
    return calls;
}

void WritePlanDiffTable(std::ostream& out, const PlanVersionDiff& diff, Currency currency) {
    if (diff.empty()) {
        out << "no changes: every cell has the same rate and every term is the same\n";
        return;
    }
    for (const auto& m : diff.models_added) out << "model added: " << m << " (tally plan show lists its cells)\n";
    for (const auto& m : diff.models_removed) out << "model removed: " << m << "\n";
    if (!diff.terms.empty()) {
        out << "terms changed:\n";
        std::vector<std::vector<std::string>> rows = {{"term", "old", "new"}};
        for (const TermChange& t : diff.terms) {
            rows.push_back({t.term, t.old_value.empty() ? "-" : t.old_value, t.new_value.empty() ? "-" : t.new_value});
        }
        WriteTextTable(out, rows, {false, false, false});
    }
    if (!diff.rates.empty()) {
        out << diff.rates.size() << " rate(s) changed, in " << currency.code()
            << " (rate/1M: per 1,000,000 units; change: per unit, half-even to 0.01 %):\n";
        std::vector<std::vector<std::string>> rows = {
            {"model", "band", "output", "window", "batch", "thinking", "unit", "old", "new", "change"}};
        for (const RateChange& c : diff.rates) {
            rows.push_back({c.model, c.band, c.output_condition.empty() ? "-" : c.output_condition,
                            c.window.empty() ? "-" : c.window, c.batch ? "batch" : "-", c.thinking ? "thinking" : "-",
                            c.unit, RateCell(c.old_rate), RateCell(c.new_rate), c.change});
        }
        WriteTextTable(out, rows, {false, false, false, false, false, false, false, true, true, true});
    }
}

void WritePlanDiffJson(std::ostream& out, const std::string& old_plan, const std::string& old_version,
                       const std::string& old_source, const std::string& new_plan, const std::string& new_version,
                       const std::string& new_source, const PlanVersionDiff& diff) {
    auto strings = [](const std::vector<std::string>& list) {
        std::string s = "[";
        for (size_t i = 0; i < list.size(); ++i) s += (i > 0 ? "," : "") + JsonString(list[i]);
        return s + "]";
    };
    out << "{\"old\":{\"plan\":" << JsonString(old_plan) << ",\"version\":" << JsonString(old_version)
        << ",\"source\":" << JsonString(old_source) << "},\"new\":{\"plan\":" << JsonString(new_plan)
        << ",\"version\":" << JsonString(new_version) << ",\"source\":" << JsonString(new_source)
        << "},\"models_added\":" << strings(diff.models_added) << ",\"models_removed\":" << strings(diff.models_removed)
        << ",\"terms\":[";
    for (size_t i = 0; i < diff.terms.size(); ++i) {
        const TermChange& t = diff.terms[i];
        out << (i > 0 ? "," : "") << "{\"term\":" << JsonString(t.term) << ",\"old\":" << JsonString(t.old_value)
            << ",\"new\":" << JsonString(t.new_value) << "}";
    }
    out << "],\"rates\":[";
    for (size_t i = 0; i < diff.rates.size(); ++i) {
        const RateChange& c = diff.rates[i];
        out << (i > 0 ? "," : "") << "{\"model\":" << JsonString(c.model) << ",\"band\":" << JsonString(c.band)
            << ",\"output_condition\":" << JsonString(c.output_condition) << ",\"window\":" << JsonString(c.window)
            << ",\"batch\":" << (c.batch ? "true" : "false") << ",\"thinking\":" << (c.thinking ? "true" : "false")
            << ",\"unit\":" << JsonString(c.unit) << ",\"old\":" << RateJson(c.old_rate)
            << ",\"new\":" << RateJson(c.new_rate) << ",\"change\":" << JsonString(c.change) << "}";
    }
    out << "]}\n";
}

void AddPlanToolCommands(CLI::App& plan_cmd, std::function<int()>* action) {
    auto show = std::make_shared<ShowOptions>();
    auto* show_cmd = plan_cmd.add_subcommand("show", "The resolved price table of a plan file: every cell's rates");
    show_cmd->add_option("file", show->file, "Plan YAML file")->required()->check(CLI::ExistingFile);
    show_cmd->add_option("--version", show->version, "Only this version (its `version:` id)");
    show_cmd->add_option("--at", show->at, "Only the version in force at this RFC 3339 instant");
    show_cmd->add_option("--format", show->format, "table (default), json or csv");
    show_cmd->footer(kShowHelp);
    show_cmd->callback([show, action] { *action = [show] { return RunPlanShow(*show, std::cout, std::cerr); }; });

    auto diff = std::make_shared<DiffOptions>();
    auto* diff_cmd = plan_cmd.add_subcommand("diff", "What changes between two plan versions, cell by cell");
    diff_cmd->add_option("files", diff->files, "OLD.yaml NEW.yaml, or one file (its last two versions)")
        ->required()
        ->check(CLI::ExistingFile);
    diff_cmd->add_option("--published", diff->published,
                         "Compare with this published plan in the ledger instead of OLD.yaml");
    diff_cmd->add_option("--database-url", diff->database_url,
                         "With --published: PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    diff_cmd->add_option("--old-version", diff->old_version, "The old side's version (default: its latest)");
    diff_cmd->add_option("--new-version", diff->new_version, "The new side's version (default: its latest)");
    diff_cmd->add_option("--format", diff->format, "table (default) or json");
    diff_cmd->footer(kDiffHelp);
    diff_cmd->callback([diff, action] { *action = [diff] { return RunPlanDiff(*diff, std::cout, std::cerr); }; });

    auto tried = std::make_shared<TryOptions>();
    auto* try_cmd =
        plan_cmd.add_subcommand("try", "The lines calls would be billed under a plan file, with the arithmetic");
    try_cmd->add_option("file", tried->file, "Plan YAML file")->required()->check(CLI::ExistingFile);
    try_cmd->add_option("--event", tried->events, "One call event as JSON (repeatable)");
    try_cmd->add_option("--events", tried->events_file, "A file of call events, one JSON per line")
        ->check(CLI::ExistingFile);
    try_cmd->add_option("--format", tried->format, "table (default) or json");
    try_cmd->footer(kTryHelp);
    try_cmd->callback([tried, action] { *action = [tried] { return RunPlanTry(*tried, std::cout, std::cerr); }; });
}

int RunPlanShowFile(const std::string& file, const std::string& version, const std::string& at,
                    const std::string& format, std::ostream& out, std::ostream& err) {
    ShowOptions o{file, version, at, format};
    return RunPlanShow(o, out, err);
}

int RunPlanDiffFiles(const std::vector<std::string>& files, const std::string& old_version,
                     const std::string& new_version, const std::string& format, std::ostream& out, std::ostream& err) {
    DiffOptions o;
    o.files = files;
    o.old_version = old_version;
    o.new_version = new_version;
    o.format = format;
    return RunPlanDiff(o, out, err);
}

}  // namespace tally

// The computation of `tally quote` and `POST /v1/quotes` (quoting/quote_run.h).
// Current = the stored rollups priced as `tally usage` prices them.
// Candidate = the customer's archived messages of the period through
// `tally rate`'s own pipeline (ingest/file_rater.h) under the candidate
// catalog, priced with PriceRollups: a quote equals `tally rate` of the same
// events under the candidate plan by construction.
#include "quoting/quote_run.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "base/assert.h"
#include "billing/invoice_document.h"
#include "billing/invoice_run.h"
#include "ingest/event_decoder.h"
#include "ingest/file_rater.h"
#include "ledger/archive_reader.h"
#include "ledger/store.h"
#include "pricing/plan_yaml.h"
#include "pricing/rollup_records.h"
#include "pricing/time.h"

namespace tally::quoting {

namespace {

// "2025-11" -> month id; nullopt when not a month.
// The one reading of "YYYY-MM" (billing/invoice_run.h).
std::optional<int32_t> ParseMonth(const std::string& text) {
    return billing::PeriodIdOf(text);
}

Instant MonthStartUtc(int32_t id) {
    const std::chrono::year_month_day first{std::chrono::year(MonthIdYear(id)),
                                            std::chrono::month(static_cast<unsigned>(MonthIdMonth(id))),
                                            std::chrono::day(1)};
    return Instant(std::chrono::sys_days(first));
}

// The month id of `t` in the zone of the candidate's version at `t` (the
// first version before it, the last after it): the period a call rejected
// under the candidate would have been billed in.
int32_t CandidatePeriodOf(const Plan& plan, Instant t) {
    const PlanVersion* v = plan.VersionAt(t);
    if (v == nullptr) v = t < plan.versions.front().effective_from ? &plan.versions.front() : &plan.versions.back();
    ZoneClock clock(v->zone);
    const LocalTime local = clock.Local(t);
    return MonthId(local.year, local.month);
}

// Parses the candidate plan into a copy of the published catalog: in
// place of the published plan of its name, else added. nullopt with every
// problem (file:line:column) in *problems when it does not validate.
std::optional<Catalog> CandidateCatalog(const Catalog& published, std::string_view text, std::string_view file,
                                        std::string* name, Diagnostics* problems) {
    Catalog candidate = published;
    // A candidate version may be written as changes to a published one.
    auto plan = ParsePlan(text, file, &candidate.units, problems, &published);
    if (!plan) return std::nullopt;
    *name = plan->name;
    const int index = candidate.PlanIndex(plan->name);
    if (index >= 0) {
        candidate.plans[static_cast<size_t>(index)] = std::move(*plan);
    } else {
        candidate.plans.push_back(std::move(*plan));
    }
    return candidate;
}

// Contract terms carry amounts in their plan's currency: a candidate in
// another currency cannot take them over.
bool SameCurrency(const Catalog& published, const Plan& candidate, const std::vector<Subscription>& subscriptions,
                  const std::set<std::string>& customers, std::string* why) {
    const Currency want = candidate.versions.front().currency;
    for (const PlanVersion& v : candidate.versions) {
        if (!(v.currency == want)) {
            *why = "the candidate plan's versions bill in two currencies (" + std::string(want.code()) + ", " +
                   std::string(v.currency.code()) + "): a quote compares one currency";
            return false;
        }
    }
    for (const Subscription& s : subscriptions) {
        if (customers.count(s.customer) == 0) continue;
        const Plan* was = published.FindPlan(s.plan);
        if (was == nullptr) continue;
        for (const PlanVersion& v : was->versions) {
            if (!(v.currency == want)) {
                *why = "customer " + s.customer + " is on plan " + s.plan + " in " + std::string(v.currency.code()) +
                       "; the candidate bills in " + std::string(want.code()) +
                       ": contract terms and amounts of two currencies are not compared";
                return false;
            }
        }
    }
    return true;
}

// The inputs shared by every customer of a run.
struct QuoteContext {
    int32_t period = 0;
    std::string period_text;
    Instant read_from, read_to;  // the period in UTC with a day of margin on each side
    const ingest::CatalogSnapshot* current = nullptr;
    std::string current_default;
    // Rating under the candidate: every subscription of the quoted
    // customers on the candidate plan.
    const ingest::CatalogSnapshot* candidate = nullptr;
    std::string candidate_plan;
    // Pricing under the candidate: the same, with the balances that earlier
    // periods left (billing::MoveOntoCandidate).
    const std::vector<Subscription>* candidate_pricing = nullptr;
    const std::vector<Invoice>* current_invoices = nullptr;  // every period of every quoted customer
};

std::vector<Invoice> OfCustomerPeriod(const std::vector<Invoice>& invoices, const std::string& customer,
                                      const std::string& period) {
    std::vector<Invoice> out;
    for (const Invoice& inv : invoices) {
        if (inv.customer == customer && inv.period == period) out.push_back(inv);
    }
    return out;
}

// The rollups of one period only: calls of the margins belong to the
// periods around it, and pricing them would spend grant and coupon balances.
std::vector<Rollup> OfPeriod(std::vector<Rollup> rollups, int32_t period) {
    std::erase_if(rollups, [&](const Rollup& r) { return r.period != period; });
    return rollups;
}

// The candidate's rejections of calls in the period (those of the margins
// belong to the periods around it), with their topic: a second read of the
// archive, decoding only the rejected messages to find their time.
std::vector<QuoteRejected> RejectedInPeriod(const QuoteContext& c, ledger::ArchiveReader* archive,
                                            const std::string& customer,
                                            const std::vector<ingest::RejectedAt>& rejected) {
    std::map<std::pair<int32_t, int64_t>, const ingest::RejectedAt*> at;
    for (const ingest::RejectedAt& r : rejected) at.emplace(std::pair{r.at.file, r.at.line}, &r);
    const Plan& plan = *c.candidate->catalog.FindPlan(c.candidate_plan);
    EventDecoder decoder;
    Event event;
    std::string reason;
    std::vector<QuoteRejected> out;
    archive->ForEachEvent(customer, c.read_from, c.read_to, [&](const ledger::ArchivedEvent& e) {
        auto it = at.find({e.partition, e.offset});
        if (it == at.end()) return;
        // A message that no longer decodes (a stricter decoder since it was
        // archived) has no time: it is reported, never dropped.
        const bool decoded = decoder.Decode(e.payload, &event, &reason);
        if (decoded && CandidatePeriodOf(plan, event.time) != c.period) return;
        const ingest::RejectedAt& r = *it->second;
        out.push_back(
            {customer, std::string(e.topic), e.partition, e.offset, std::string(RejectReasonCode(r.code)), r.reason});
    });
    return out;
}

// Whether the candidate puts every call in the same period as the plans
// that billed it: one time zone for every version of the candidate and of
// each plan the customer was put on (its subscriptions', else the default).
// Then the calls the candidate rated or rejected in the period are the
// archive's calls of the period: no second rating under the published plans.
bool SamePeriods(const QuoteContext& c, const std::string& customer) {
    const Plan& candidate = *c.candidate->catalog.FindPlan(c.candidate_plan);
    const std::string& zone = candidate.versions.front().zone_name;
    auto one_zone = [&](const Plan* plan) {
        return plan != nullptr && std::all_of(plan->versions.begin(), plan->versions.end(),
                                              [&](const PlanVersion& v) { return v.zone_name == zone; });
    };
    if (!one_zone(&candidate)) return false;
    bool subscribed = false;
    for (const Subscription& s : c.current->subscriptions) {
        if (s.customer != customer) continue;
        subscribed = true;
        if (!one_zone(c.current->catalog.FindPlan(s.plan))) return false;
    }
    return subscribed || one_zone(c.current->catalog.FindPlan(c.current_default));
}

// A customer's archived calls of the period (and margins) rated under the
// candidate, and under the published plans when periods could differ.
struct RatedCustomer {
    ingest::FileRater::Result candidate;
    std::optional<ingest::FileRater::Result> as_billed;
    int64_t archived = 0;
};

// Archived messages handed from the thread that reads them to the one that
// rates them, a chunk at a time: PostgreSQL decompresses and sends the next
// rows while the previous ones are rated. At most kChunksMax chunks wait.
class ArchivePipe {
   public:
    struct Message {
        int32_t partition = 0;
        int64_t offset = 0;
        std::string payload;
    };
    using Chunk = std::vector<Message>;
    static constexpr size_t kChunkMessages = 8192;
    static constexpr size_t kChunksMax = 4;

    void Push(Chunk chunk) {
        std::unique_lock lock(mutex_);
        room_.wait(lock, [&] { return chunks_.size() < kChunksMax; });
        chunks_.push_back(std::move(chunk));
        ready_.notify_one();
    }
    // The reader's last word: done, or failed with `error`.
    void Close(std::exception_ptr error) {
        std::lock_guard lock(mutex_);
        closed_ = true;
        error_ = std::move(error);
        ready_.notify_one();
    }
    // The next chunk; nullopt once the reader closed and all were taken.
    // Rethrows the reader's failure.
    std::optional<Chunk> Pop() {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !chunks_.empty() || closed_; });
        if (chunks_.empty()) {
            if (error_) std::rethrow_exception(error_);
            return std::nullopt;
        }
        Chunk chunk = std::move(chunks_.front());
        chunks_.pop_front();
        room_.notify_one();
        return chunk;
    }
    // Lets a reader blocked in Push go on after the rating side failed.
    void Drain() {
        std::lock_guard lock(mutex_);
        chunks_.clear();
        draining_ = true;
        room_.notify_all();
    }
    bool draining() {
        std::lock_guard lock(mutex_);
        return draining_;
    }

   private:
    std::mutex mutex_;
    std::condition_variable ready_, room_;
    std::deque<Chunk> chunks_;
    bool closed_ = false;
    bool draining_ = false;
    std::exception_ptr error_;
};

RatedCustomer RateCustomer(const QuoteContext& c, ledger::ArchiveReader* archive, const std::string& customer) {
    ingest::AssemblerOptions options;
    options.known_customers_only = false;  // customers of no subscription: on the default plan
    options.only_customer = customer;
    std::optional<ingest::FileRater> as_billed;
    if (!SamePeriods(c, customer)) as_billed.emplace(*c.current, c.current_default, options);
    ingest::FileRater candidate(*c.candidate, c.candidate_plan, options);
    RatedCustomer out;
    ArchivePipe pipe;
    std::thread reader([&] {
        try {
            ArchivePipe::Chunk chunk;
            out.archived = archive->ForEachEvent(customer, c.read_from, c.read_to, [&](const ledger::ArchivedEvent& e) {
                if (pipe.draining()) return;
                chunk.push_back({e.partition, e.offset, std::string(e.payload)});
                if (chunk.size() == ArchivePipe::kChunkMessages) pipe.Push(std::exchange(chunk, {}));
            });
            if (!chunk.empty()) pipe.Push(std::move(chunk));
            pipe.Close(nullptr);
        } catch (...) {
            pipe.Close(std::current_exception());
        }
    });
    try {
        while (std::optional<ArchivePipe::Chunk> chunk = pipe.Pop()) {
            for (ArchivePipe::Message& m : *chunk) {
                // The Kafka partition and offset stand for a file and line: a
                // rejection names where the message is in the archive.
                if (as_billed) as_billed->Add(m.partition, m.offset, m.payload);
                candidate.Add(m.partition, m.offset, std::move(m.payload));
            }
        }
    } catch (...) {
        pipe.Drain();
        reader.join();
        throw;
    }
    reader.join();
    out.candidate = candidate.Finish();
    if (as_billed) out.as_billed = as_billed->Finish();
    return out;
}

QuoteCustomerResult QuoteCustomer(const QuoteContext& c, ledger::ArchiveReader* archive, const std::string& customer,
                                  RatedCustomer rated) {
    QuoteCustomerResult run;
    run.archived = rated.archived;
    run.current = OfCustomerPeriod(*c.current_invoices, customer, c.period_text);
    run.candidate = PriceRollups(c.candidate->catalog, *c.candidate_pricing, c.candidate_plan, {},
                                 OfPeriod(std::move(rated.candidate.rollups), c.period));
    run.quote = billing::CompareInvoices(customer, c.period_text, run.current, run.candidate);
    if (!rated.candidate.rejected.empty()) {
        run.rejected = RejectedInPeriod(c, archive, customer, rated.candidate.rejected);
    }
    // The archive must hold every call the ledger bills for the period.
    int64_t calls_billed = 0, calls_archived = 0;
    for (const Invoice& inv : run.current) calls_billed += inv.calls;
    if (rated.as_billed) {
        for (const Invoice& inv : PriceRollups(c.current->catalog, c.current->subscriptions, c.current_default, {},
                                               OfPeriod(std::move(rated.as_billed->rollups), c.period))) {
            calls_archived += inv.calls;
        }
    } else {
        for (const Invoice& inv : run.candidate) calls_archived += inv.calls;
        calls_archived += static_cast<int64_t>(run.rejected.size());
    }
    if (auto gap = billing::ArchiveGap(customer, c.period_text, calls_billed, calls_archived)) {
        run.quote.errors.insert(run.quote.errors.begin(), *gap);
        run.archive_incomplete = true;
    }
    return run;
}

// The current side: every period of the customer (or of all) priced from
// the stored rollups, as `tally usage` does, on a connection of its own.
struct CurrentSide {
    std::vector<Invoice> invoices;
    int64_t unresolved = 0;
};

CurrentSide PriceCurrent(const std::string& url, const QuoteContext& c, const std::string& customer) {
    ledger::Store store(url);
    const RecordsRead read = FromRecords(c.current->catalog, store.LoadRollups(customer, -1));
    return {PriceRollups(c.current->catalog, c.current->subscriptions, c.current_default, {}, read.rollups),
            read.unresolved};
}

// Quotes every customer of the run, one after the other (each re-rating
// is bounded by its own archive); `rated_first` is the first customer's
// rating when it was done already.
void QuoteAll(const QuoteInput& in, const QuoteContext& c, const std::vector<std::string>& quoted,
              ledger::ArchiveReader* archive, std::optional<RatedCustomer> rated_first, QuoteResult* result) {
    if (in.all_customers && in.on_customers) in.on_customers(static_cast<int64_t>(quoted.size()));
    std::vector<billing::CustomerQuote> quotes;
    for (const std::string& customer : quoted) {
        RatedCustomer rated = rated_first ? std::move(*rated_first) : RateCustomer(c, archive, customer);
        rated_first.reset();
        result->customers.push_back(QuoteCustomer(c, archive, customer, std::move(rated)));
        quotes.push_back(result->customers.back().quote);
        if (in.all_customers && in.on_quoted) in.on_quoted();
    }
    result->book = billing::SumBook(std::move(quotes));
}


}  // namespace

QuoteStatus ComputeQuote(const QuoteInput& in, QuoteResult* result) {
    TALLY_ASSERT(result != nullptr);
    QuoteStatus status;
    auto fail = [&](QuoteFailure failure, std::string message) {
        status.failure = failure;
        status.message = std::move(message);
        return status;
    };
    const std::optional<int32_t> month = ParseMonth(in.period);
    if (!month) return fail(QuoteFailure::kBadInput, "the period is a month like 2025-11, not '" + in.period + "'");
    if (in.customer.empty() == !in.all_customers) {
        return fail(QuoteFailure::kBadInput, "give one customer or all customers");
    }
    QuoteContext c;
    c.period = *month;
    c.period_text = in.period;
    // A day around the period's UTC month covers every plan zone (UTC-12 to
    // UTC+14); the rater's period assignment keeps the period's calls.
    c.read_from = MonthStartUtc(c.period) - std::chrono::days(1);
    c.read_to = MonthStartUtc(c.period + 1) + std::chrono::days(1);
    const std::string& url = in.database_url;
    try {
        ledger::Store store(url);
        ingest::CatalogSnapshot published = store.Load();
        if (published.catalog.plans.empty()) {
            return fail(QuoteFailure::kNoPlans, "no plans published yet: nothing is billed to compare with");
        }
        if (in.known_customer_only && !in.all_customers && published.customers.count(in.customer) == 0) {
            return fail(QuoteFailure::kUnknownCustomer, "no customer '" + in.customer + "'");
        }
        auto candidate_catalog =
            CandidateCatalog(published.catalog, in.plan_text, in.plan_file, &c.candidate_plan, &status.problems);
        if (!candidate_catalog) {
            return fail(QuoteFailure::kInvalidPlan,
                        in.plan_file + ": the candidate plan is not valid (" + std::to_string(status.problems.size()) +
                            " problem" + (status.problems.size() == 1 ? "" : "s") + "): no quote");
        }
        result->candidate_plan = c.candidate_plan;
        result->replaces_published = published.catalog.PlanIndex(c.candidate_plan) >= 0;
        c.current = &published;
        c.current_default = published.catalog.plans.front().name;
        // The current side is read and priced while the archive is re-rated.
        std::future<CurrentSide> current_future =
            std::async(std::launch::async, PriceCurrent, url, std::cref(c), in.customer);
        ledger::ArchiveReader archive(url);
        std::set<std::string> customers;
        std::optional<CurrentSide> current;
        if (in.all_customers) {
            current = current_future.get();
            for (const Invoice& inv : current->invoices) {
                if (inv.period == c.period_text) customers.insert(inv.customer);
            }
            for (std::string& id : archive.Customers(c.read_from, c.read_to)) customers.insert(std::move(id));
        } else {
            customers.insert(in.customer);
        }
        const std::vector<std::string> quoted(customers.begin(), customers.end());
        ingest::CatalogSnapshot candidate{
            std::move(*candidate_catalog),
            billing::MoveOntoCandidate(published.subscriptions, quoted, c.candidate_plan, {}),
            {}};
        c.candidate = &candidate;
        const Plan& plan = *candidate.catalog.FindPlan(c.candidate_plan);
        std::string why;
        if (!SameCurrency(published.catalog, plan, published.subscriptions, customers, &why)) {
            return fail(QuoteFailure::kCurrency, why);
        }
        std::optional<RatedCustomer> rated_first;
        if (!in.all_customers) {
            rated_first = RateCustomer(c, &archive, in.customer);
            current = current_future.get();
        }
        if (current->unresolved > 0 && in.warn) {
            in.warn(std::to_string(current->unresolved) + " rollup rows name a plan, version, model or unit that " +
                    "is not published any more and were left out of the current side");
        }
        c.current_invoices = &current->invoices;
        // Earlier periods' invoices: what they spent of grants and coupons.
        std::vector<Invoice> earlier;
        for (const Invoice& inv : current->invoices) {
            if (inv.period < c.period_text && customers.count(inv.customer) != 0) earlier.push_back(inv);
        }
        const std::vector<Subscription> pricing =
            billing::MoveOntoCandidate(published.subscriptions, quoted, c.candidate_plan, earlier);
        c.candidate_pricing = &pricing;
        QuoteAll(in, c, quoted, &archive, std::move(rated_first), result);
        return status;
    } catch (const std::exception& e) {
        return fail(QuoteFailure::kFailed, e.what());
    }
}

namespace {

std::string Money(const Amount& a) {
    return a.ToString(a.currency().minor_digits());
}

std::string ComparisonJson(const billing::Comparison& c) {
    return "{\"current\":\"" + Money(c.current) + "\",\"candidate\":\"" + Money(c.candidate) + "\",\"difference\":\"" +
           Money(c.difference) +
           "\",\"change_percent\":" + (c.change ? "\"" + c.change->value().ToString(2) + "\"" : std::string("null")) +
           "}";
}

std::string StringsJson(const std::vector<std::string>& items) {
    std::string s = "[";
    for (size_t i = 0; i < items.size(); ++i) s += (i == 0 ? "" : ",") + billing::JsonQuote(items[i]);
    return s + "]";
}

void WriteLineJson(std::ostream& out, const billing::QuoteLine& l) {
    const billing::QuoteLineKey& k = l.key;
    out << "{\"kind\":" << billing::JsonQuote(LineKindName(k.kind)) << ",\"model\":" << billing::JsonQuote(k.model)
        << ",\"unit\":" << billing::JsonQuote(k.unit) << ",\"band\":" << billing::JsonQuote(k.band)
        << ",\"output_condition\":" << billing::JsonQuote(k.output_condition) << ",\"window\":" << billing::JsonQuote(k.window)
        << ",\"batch\":" << (k.batch ? "true" : "false") << ",\"thinking\":" << (k.thinking ? "true" : "false")
        << ",\"tier\":" << billing::JsonQuote(k.tier) << ",\"description\":" << billing::JsonQuote(k.description)
        << ",\"in_current\":" << (l.in_current ? "true" : "false")
        << ",\"in_candidate\":" << (l.in_candidate ? "true" : "false") << ",\"quantity_current\":" << l.quantity_current
        << ",\"quantity_candidate\":" << l.quantity_candidate << ",\"amount\":" << ComparisonJson(l.amount) << "}";
}

void WriteCustomerJson(std::ostream& out, const QuoteCustomerResult& c) {
    const billing::CustomerQuote& q = c.quote;
    out << "{\"customer\":" << billing::JsonQuote(q.customer) << ",\"name\":" << billing::JsonQuote(q.customer_name)
        << ",\"period\":" << billing::JsonQuote(q.period) << ",\"compared\":" << (q.errors.empty() ? "true" : "false")
        << ",\"archive_incomplete\":" << (c.archive_incomplete ? "true" : "false")
        << ",\"errors\":" << StringsJson(q.errors) << ",\"plans_current\":" << StringsJson(q.plans_current)
        << ",\"plans_candidate\":" << StringsJson(q.plans_candidate) << ",\"calls_current\":" << q.calls_current
        << ",\"calls_candidate\":" << q.calls_candidate << ",\"archived_messages\":" << c.archived;
    if (q.errors.empty()) {
        out << ",\"currency\":" << billing::JsonQuote(q.currency.code()) << ",\"lines\":[";
        for (size_t i = 0; i < q.lines.size(); ++i) {
            if (i > 0) out << ",";
            WriteLineJson(out, q.lines[i]);
        }
        out << "],\"subtotal\":" << ComparisonJson(q.subtotal) << ",\"tax\":" << ComparisonJson(q.tax)
            << ",\"total\":" << ComparisonJson(q.total) << ",\"amount_due\":" << ComparisonJson(q.amount_due);
    }
    out << ",\"rejected\":[";
    for (size_t i = 0; i < c.rejected.size(); ++i) {
        const QuoteRejected& r = c.rejected[i];
        out << (i == 0 ? "" : ",") << "{\"topic\":" << billing::JsonQuote(r.topic) << ",\"partition\":" << r.partition
            << ",\"offset\":" << r.offset << ",\"code\":" << billing::JsonQuote(r.code)
            << ",\"reason\":" << billing::JsonQuote(r.reason) << "}";
    }
    out << "]}";
}

void WriteJson(std::ostream& out, const QuoteResult& result, const std::string& period) {
    out << "{\"period\":" << billing::JsonQuote(period) << ",\"candidate_plan\":" << billing::JsonQuote(result.candidate_plan)
        << ",\"replaces_published\":" << (result.replaces_published ? "true" : "false") << ",\"customers\":[";
    for (size_t i = 0; i < result.customers.size(); ++i) {
        if (i > 0) out << ",";
        WriteCustomerJson(out, result.customers[i]);
    }
    out << "],\"book\":{\"customers_not_compared\":" << result.book.customers_not_compared << ",\"totals\":[";
    for (size_t i = 0; i < result.book.totals.size(); ++i) {
        const billing::BookTotal& t = result.book.totals[i];
        out << (i == 0 ? "" : ",") << "{\"currency\":" << billing::JsonQuote(t.currency.code())
            << ",\"customers\":" << t.customers << ",\"subtotal\":" << ComparisonJson(t.subtotal)
            << ",\"tax\":" << ComparisonJson(t.tax) << ",\"total\":" << ComparisonJson(t.total)
            << ",\"amount_due\":" << ComparisonJson(t.amount_due) << "}";
    }
    out << "]}}\n";
}


}  // namespace

std::string QuoteJson(const QuoteResult& result, const std::string& period) {
    std::ostringstream out;
    WriteJson(out, result, period);
    return out.str();
}

}  // namespace tally::quoting

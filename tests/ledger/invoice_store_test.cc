// Invoices against a real PostgreSQL: drafts written and replaced, gapless
// numbers under concurrent finalization, finalized invoices frozen by the
// database itself, late usage carried as an adjustment priced with the
// period's tiers, void with a credit note, partial credits, the hash
// recomputed (and a tampered row caught), and exports that do not depend on
// how the usage was batched.
#include "ledger/invoice_store.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <regex>
#include <set>
#include <thread>

#include "billing/invoice_run.h"
#include "ledger/batch_writer.h"
#include "ledger/cost_store.h"
#include "ledger/migrations.h"
#include "ledger/store.h"
#include "pricing/rollup_records.h"
#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

// 2.00 CNY per 1M input tokens for the first 1M of a period, 1.00 beyond
// (graduated); output 4.00 per 1M; 6 % tax; rounded once per invoice.
const char* const kPlan = R"(plan: p
name: 测试套餐
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    tax_percent: "6"
    models:
      m:
        rates: {input: "2.00", output: "4.00"}
    tiers:
      - name: volume
        units: [input]
        mode: graduated
        tiers:
          - {up_to: 1000000, multiplier: "1"}
          - {multiplier: "0.5"}
)";

Event Call(const std::string& customer, const std::string& id, const std::string& time, int64_t input,
           int64_t output = 0) {
    Event e;
    e.id = id;
    e.source = "gw";
    e.subject = customer;
    e.time = *ParseRfc3339(time);
    e.model = "m";
    e.input_tokens = input;
    e.output_tokens = output;
    return e;
}

class InvoiceStoreTest : public LedgerDb {
   protected:
    void SetUp() override {
        LedgerDb::SetUp();
        if (HasFatalFailure()) return;
        Migrate(url_);
        Store store(url_);
        Diagnostics d;
        ASSERT_TRUE(store.PublishPlan(kPlan, "p.yaml", &d).has_value()) << (d.empty() ? "" : d[0].ToString());
        for (const char* c : {"a", "b"}) {
            store.AddCustomer(c, std::string("客户 ") + c);
            store.Subscribe(c, "p", "2025-01-01T00:00:00Z", "");
        }
        invoices_ = std::make_unique<InvoiceStore>(url_);
        Issuer is;
        is.issuer = "acme";
        is.name = "北京示例科技有限公司";
        invoices_->SetIssuer(is);
    }
    void TearDown() override {
        invoices_.reset();
        LedgerDb::TearDown();
    }

    // Rates `events` with the published catalog and adds their rollups to
    // the ledger as the consumer would (rollup_deltas), `batches` at a time.
    void Consume(const std::vector<Event>& events, size_t per_batch = 1000) {
        Store store(url_);
        ingest::CatalogSnapshot cat = store.Load();
        pqxx::connection c(url_);
        for (size_t begin = 0; begin < events.size(); begin += per_batch) {
            Rater rater(cat.catalog, cat.subscriptions, "p", {});
            for (size_t i = begin; i < std::min(events.size(), begin + per_batch); ++i) {
                ASSERT_EQ(rater.Add(events[i]).status, RateStatus::kRated);
            }
            pqxx::work tx(c);
            for (const RollupRecord& r : ToRecords(cat.catalog, rater.Rollups())) {
                tx.exec_params0("INSERT INTO rollup_deltas (customer_id, period, hour, plan, version, model, band, "
                                "condition, time_window, flags, unit, quantity, calls, project) VALUES ($1, $2, $3, $4, "
                                "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                                r.customer, r.period, r.hour, r.plan, r.version, r.model, r.band, r.condition,
                                r.time_window, r.flags, r.unit, r.quantity, r.calls, r.project);
            }
            tx.exec0("INSERT INTO consumer_offsets VALUES ('tally', 'usage', 0, 1, now()) ON CONFLICT "
                     "(consumer_group, topic, kafka_partition) DO UPDATE SET next_offset = consumer_offsets.next_offset + 1, "
                     "updated_at = now()");
            tx.commit();
        }
    }

    RunResult RunPeriod(const std::string& period, const std::string& customer = "", int customers_per_chunk = 250) {
        Store store(url_);
        ingest::CatalogSnapshot cat = store.Load();
        RunOptions o;
        o.period_id = *billing::PeriodIdOf(period);
        o.customer = customer;
        o.customers_per_chunk = customers_per_chunk;
        return invoices_->Run(cat.catalog, cat.subscriptions, o);
    }

    std::vector<billing::InvoiceDocument> Period(const std::string& period, const std::string& status = "") {
        ListFilter f;
        f.period_id = *billing::PeriodIdOf(period);
        f.status = status;
        return invoices_->List(f);
    }

    // Runs `sql` as the test's own connection; returns the error text, or ""
    // if the statement succeeded.
    std::string TryExec(const std::string& sql) {
        pqxx::connection c(url_);
        try {
            pqxx::work tx(c);
            tx.exec0(sql);
            tx.commit();
            return "";
        } catch (const std::exception& e) {
            return e.what();
        }
    }

    std::unique_ptr<InvoiceStore> invoices_;
};

const billing::DocumentLine* LineOfKind(const billing::InvoiceDocument& d, const std::string& kind) {
    for (const auto& l : d.lines) {
        if (l.kind == kind) return &l;
    }
    return nullptr;
}

TEST_F(InvoiceStoreTest, RunWritesDraftsAndARerunReplacesThem) {
    // a: 300,000 input in November (Asia/Shanghai) = 0.60; 6 % tax = 0.036
    // -> 0.04 (half-even); total 0.64. b: 1,500,000 input = 1M x 2.00 + 0.5M
    // x 1.00 = 2.50; tax 0.15; total 2.65.
    Consume({Call("a", "1", "2025-11-03T10:00:00Z", 300000), Call("b", "2", "2025-11-10T10:00:00Z", 1500000)});
    RunResult r = RunPeriod("2025-11");
    EXPECT_EQ(r.drafts, 2);
    EXPECT_EQ(r.customers, 2);
    EXPECT_FALSE(r.cutoff.empty());
    auto docs = Period("2025-11");
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[0].customer, "a");
    EXPECT_EQ(docs[0].status, "draft");
    EXPECT_EQ(docs[0].total, "0.64");
    EXPECT_EQ(docs[0].customer_name, "客户 a");
    EXPECT_EQ(docs[0].period_start, "2025-10-31T16:00:00Z");
    EXPECT_EQ(docs[0].grace_until, "2025-12-01T16:00:00Z");  // 24 h after the period's end
    EXPECT_EQ(docs[1].subtotal, "2.50");
    EXPECT_EQ(docs[1].tax, "0.15");
    EXPECT_EQ(docs[1].total, "2.65");
    ASSERT_NE(LineOfKind(docs[1], "usage"), nullptr);
    EXPECT_EQ(LineOfKind(docs[1], "usage")->first_hour, "2025-11-10T10:00:00Z");

    // More usage, run again: the drafts are replaced, not added to.
    Consume({Call("a", "3", "2025-11-20T10:00:00Z", 200000)});
    r = RunPeriod("2025-11");
    EXPECT_EQ(r.drafts, 2);
    docs = Period("2025-11");
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[0].subtotal, "1.00");  // 500,000 x 2.00 / 1M
}

// Projects change no price: the same calls in one project (a) and spread
// over five (b), hours shared and the graduated tier crossed, give the same
// invoice, line by line, folded in and out of rollups.
TEST_F(InvoiceStoreTest, TheSameCallsInOneOrFiveProjectsGiveTheSameInvoice) {
    std::vector<Event> events;
    for (int i = 0; i < 12; ++i) {
        const std::string time = "2025-11-0" + std::to_string(3 + i % 3) + "T1" + std::to_string(i % 4) + ":00:00Z";
        for (const char* c : {"a", "b"}) {
            Event e = Call(c, std::string(c) + std::to_string(i), time, 150001 + i * 7, 1000 + i);
            e.project = c == std::string("a") ? "only" : "p" + std::to_string(i % 5);
            events.push_back(e);
        }
    }
    Consume(events, 7);
    {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        EXPECT_EQ(tx.exec1("SELECT count(DISTINCT project) FROM usage_rollups WHERE customer_id = 'b'")[0].as<int>(), 5);
        EXPECT_EQ(tx.exec1("SELECT count(DISTINCT project) FROM usage_rollups WHERE customer_id = 'a'")[0].as<int>(), 1);
    }
    RunPeriod("2025-11");
    auto docs = Period("2025-11");
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[0].subtotal, docs[1].subtotal);
    EXPECT_EQ(docs[0].tax, docs[1].tax);
    EXPECT_EQ(docs[0].total, docs[1].total);
    // 1,800,474 input: 1M x 2.00 + 800,474 x 1.00 per 1M; 12,066 output x 4.00 per 1M: 2.848738.
    EXPECT_EQ(docs[0].subtotal, "2.85");
    ASSERT_EQ(docs[0].lines.size(), docs[1].lines.size());
    for (size_t i = 0; i < docs[0].lines.size(); ++i) {
        const billing::DocumentLine& x = docs[0].lines[i];
        const billing::DocumentLine& y = docs[1].lines[i];
        EXPECT_EQ(x.kind + x.unit + x.tier + x.amount + x.amount_rounded + x.first_hour + x.last_hour,
                  y.kind + y.unit + y.tier + y.amount + y.amount_rounded + y.first_hour + y.last_hour)
            << i;
        EXPECT_EQ(x.quantity, y.quantity) << i;
    }
    // Folded into rollups, read again: the same.
    EXPECT_GT(BatchWriter(url_, "tally", "usage").FoldDeltas().rollups, 0);
    RunPeriod("2025-11");
    auto again = Period("2025-11");
    ASSERT_EQ(again.size(), 2u);
    EXPECT_EQ(again[0].total, docs[0].total);
    EXPECT_EQ(again[1].total, docs[1].total);
}

// Rollups are read through COPY's text format: an id with a backslash (and
// Chinese) comes back as it was stored.
TEST_F(InvoiceStoreTest, CustomerIdsSurviveTheCopyReadOfRollups) {
    const std::string odd = "客户\\x\\\\y";  // 客户\x\\y
    {
        Store store(url_);
        store.AddCustomer(odd, "");
        store.Subscribe(odd, "p", "2025-01-01T00:00:00Z", "");
    }
    Consume({Call(odd, "1", "2025-11-03T10:00:00Z", 300000)});
    RunPeriod("2025-11");
    auto docs = Period("2025-11");
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].customer, odd);
    EXPECT_EQ(docs[0].subtotal, "0.60");
}

TEST_F(InvoiceStoreTest, FinalizedInvoicesAreNumberedFrozenAndVerifiable) {
    Consume({Call("a", "1", "2025-11-03T10:00:00Z", 300000)});
    RunPeriod("2025-11");
    auto done = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "");
    ASSERT_EQ(done.size(), 1u);
    EXPECT_TRUE(std::regex_match(done[0].number, std::regex("INV-20[0-9]{2}-000001"))) << done[0].number;
    const std::string number = done[0].number;
    EXPECT_TRUE(invoices_->Verify(number).ok());

    // The database refuses every change, whoever asks.
    EXPECT_NE(TryExec("UPDATE invoices SET total = 0 WHERE number = '" + number + "'"), "");
    EXPECT_NE(TryExec("DELETE FROM invoices WHERE number = '" + number + "'"), "");
    EXPECT_NE(TryExec("UPDATE invoice_lines SET amount = 0"), "");
    EXPECT_NE(TryExec("DELETE FROM invoice_lines"), "");
    EXPECT_NE(TryExec("INSERT INTO invoice_lines (invoice_id, line_no, kind, amount, amount_rounded) "
                      "SELECT invoice_id, 99, 'usage', 1, 1 FROM invoices"),
              "");
    EXPECT_NE(TryExec("UPDATE invoices SET status = 'void', voided_at = now(), void_reason = 'x', total = 0"), "");
    EXPECT_NE(TryExec("UPDATE invoices SET status = 'draft', number = NULL, sha256 = NULL"), "");

    // A rerun leaves it alone.
    Consume({Call("a", "2", "2025-11-04T10:00:00Z", 100000)});
    RunResult r = RunPeriod("2025-11");
    EXPECT_EQ(r.drafts, 0);
    EXPECT_EQ(r.left_finalized, 1);
    billing::InvoiceDocument after = invoices_->Load(number);
    EXPECT_EQ(after.subtotal, "0.60");
    EXPECT_TRUE(invoices_->Verify(number).ok());

    // A tampered row (triggers switched off by a superuser) is caught.
    ASSERT_EQ(TryExec("ALTER TABLE invoice_lines DISABLE TRIGGER invoice_lines_immutable; "
                      "UPDATE invoice_lines SET amount_rounded = 0.50; "
                      "ALTER TABLE invoice_lines ENABLE TRIGGER invoice_lines_immutable"),
              "");
    EXPECT_FALSE(invoices_->Verify(number).ok());
}

// Chunks are read ahead on a second connection in the run's snapshot: a
// run in chunks of 5 customers writes the same drafts as one chunk.
TEST_F(InvoiceStoreTest, ChunkedRunsReadOneSnapshot) {
    std::vector<Event> events;
    Store store(url_);
    for (int i = 0; i < 23; ++i) {
        const std::string c = "k" + std::to_string(i);
        store.AddCustomer(c, "");
        store.Subscribe(c, "p", "2025-01-01T00:00:00Z", "");
        events.push_back(Call(c, "e" + std::to_string(i), "2025-11-05T00:00:00Z", 100000 * (i + 1), 1000 * i));
    }
    Consume(events);
    auto drafts = [&] {
        std::string out;
        for (const auto& d : Period("2025-11")) out += d.customer + " " + d.subtotal + " " + d.total + "\n";
        return out;
    };
    RunResult one = RunPeriod("2025-11", "", 250);
    const std::string whole = drafts();
    RunResult chunked = RunPeriod("2025-11", "", 5);
    EXPECT_EQ(chunked.drafts, one.drafts);
    EXPECT_EQ(chunked.rollup_rows, one.rollup_rows);
    EXPECT_EQ(drafts(), whole);
    EXPECT_EQ(one.drafts, 23);
}

TEST_F(InvoiceStoreTest, ConcurrentFinalizationsGiveGaplessNumbers) {
    std::vector<Event> events;
    Store store(url_);
    for (int i = 0; i < 24; ++i) {
        const std::string c = "c" + std::to_string(i);
        store.AddCustomer(c, "");
        store.Subscribe(c, "p", "2025-01-01T00:00:00Z", "");
        events.push_back(Call(c, "e" + std::to_string(i), "2025-11-05T00:00:00Z", 1000 * (i + 1)));
    }
    Consume(events);
    RunPeriod("2025-11");
    std::vector<int64_t> ids;
    for (const auto& d : Period("2025-11")) ids.push_back(d.invoice_id);
    ASSERT_EQ(ids.size(), 24u);
    // Two finalizers race over the same drafts, one id at a time, each in
    // its own connection; whoever loses a race gets "finalized already".
    std::atomic<int> refused{0};
    auto finalizer = [&](bool reverse) {
        InvoiceStore mine(url_);
        std::vector<int64_t> order = ids;
        if (reverse) std::reverse(order.begin(), order.end());
        for (int64_t id : order) {
            try {
                mine.FinalizeIds({id});
            } catch (const LedgerError&) {
                ++refused;
            }
        }
    };
    std::thread t1(finalizer, false), t2(finalizer, true);
    t1.join();
    t2.join();
    EXPECT_EQ(refused.load(), 24);
    std::set<std::string> numbers;
    for (const auto& d : Period("2025-11")) {
        EXPECT_EQ(d.status, "finalized");
        numbers.insert(d.number);
    }
    ASSERT_EQ(numbers.size(), 24u);
    const std::string year = numbers.begin()->substr(4, 4);
    for (int n = 1; n <= 24; ++n) {
        char want[32];
        std::snprintf(want, sizeof want, "INV-%s-%06d", year.c_str(), n);
        EXPECT_EQ(numbers.count(want), 1u) << want;
    }
}

TEST_F(InvoiceStoreTest, LateUsageBecomesAnAdjustmentPricedWithThePeriodsTiers) {
    // October: 800,000 input = 1.60, finalized.
    Consume({Call("a", "1", "2025-10-10T00:00:00Z", 800000)});
    RunPeriod("2025-10");
    auto oct = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-10"), "");
    ASSERT_EQ(oct.size(), 1u);
    // A late October call of 400,000 and a November call of 100,000.
    // October priced again: 1,000,000 x 2.00 + 200,000 x 1.00 = 2.20 (the
    // tier crossed); invoiced 1.60: adjustment 0.60, not 400,000 x 2.00 = 0.80.
    Consume({Call("a", "2", "2025-10-31T15:00:00Z", 400000), Call("a", "3", "2025-11-02T00:00:00Z", 100000)});
    RunResult r = RunPeriod("2025-11");
    EXPECT_EQ(r.adjustments, 1);
    auto nov = Period("2025-11");
    ASSERT_EQ(nov.size(), 1u);
    const billing::DocumentLine* adj = LineOfKind(nov[0], "adjustment");
    ASSERT_NE(adj, nullptr);
    EXPECT_EQ(adj->amount_rounded, "0.60");
    EXPECT_EQ(adj->adjusts_period, "2025-10");
    EXPECT_EQ(adj->adjusts_invoice, oct[0].number);
    EXPECT_EQ(adj->basis_calls, 2);
    // November: 0.20 usage + 0.60 adjustment = 0.80; tax 6 % = 0.048 -> 0.05.
    EXPECT_EQ(nov[0].subtotal, "0.80");
    EXPECT_EQ(nov[0].tax, "0.05");
    EXPECT_EQ(nov[0].total, "0.85");
    // The October invoice did not change.
    EXPECT_EQ(invoices_->Load(oct[0].number).subtotal, "1.60");
    EXPECT_TRUE(invoices_->Verify(oct[0].number).ok());

    // Once November is finalized, December carries nothing more for October.
    invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "");
    Consume({Call("a", "4", "2025-12-02T00:00:00Z", 100000)});
    r = RunPeriod("2025-12");
    EXPECT_EQ(r.adjustments, 0);
    // A customer whose only news is late usage gets an invoice with the
    // adjustment alone: b, October finalized, then a late October call.
    Consume({Call("b", "5", "2025-10-05T00:00:00Z", 100000)});
    RunPeriod("2025-10", "b");
    invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-10"), "b");
    Consume({Call("b", "6", "2025-10-06T00:00:00Z", 100000)});
    r = RunPeriod("2025-12", "b");
    EXPECT_EQ(r.adjustments, 1);
    auto dec_b = Period("2025-12");
    ASSERT_EQ(dec_b.size(), 2u);
    EXPECT_EQ(dec_b[1].customer, "b");
    EXPECT_EQ(dec_b[1].calls, 0);
    EXPECT_EQ(dec_b[1].subtotal, "0.20");
}

TEST_F(InvoiceStoreTest, AMinimumCommitmentBillsAMonthWithoutUsage) {
    {
        Store store(url_);
        store.AddCustomer("c", "承诺客户");
        store.Subscribe("c", "p", "2025-10-01T00:00:00+08:00", "minimum_commitment: \"10.00\"\n");
    }
    // September is before c's subscription: nothing to bill.
    EXPECT_EQ(RunPeriod("2025-09").drafts, 0);
    // October: no call at all, the commitment bills.
    RunResult r = RunPeriod("2025-10");
    EXPECT_EQ(r.drafts, 1);
    auto oct = Period("2025-10");
    ASSERT_EQ(oct.size(), 1u);
    EXPECT_EQ(oct[0].customer, "c");
    EXPECT_EQ(oct[0].customer_name, "承诺客户");
    EXPECT_EQ(oct[0].calls, 0);
    ASSERT_EQ(oct[0].lines.size(), 1u);
    EXPECT_EQ(oct[0].lines[0].kind, "commitment");
    EXPECT_EQ(oct[0].subtotal, "10.00");
    EXPECT_EQ(oct[0].tax, "0.60");
    EXPECT_EQ(oct[0].total, "10.60");
    auto finalized = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-10"), "");
    ASSERT_EQ(finalized.size(), 1u);
    // November with 1,000,000 input tokens (2.00): the true-up makes 10.00,
    // and October, priced again, is what was invoiced: no adjustment.
    Consume({Call("c", "c1", "2025-11-03T00:00:00Z", 1000000)});
    r = RunPeriod("2025-11");
    EXPECT_EQ(r.adjustments, 0);
    auto nov = Period("2025-11");
    ASSERT_EQ(nov.size(), 1u);
    EXPECT_EQ(nov[0].calls, 1);
    EXPECT_EQ(LineOfKind(nov[0], "commitment")->amount_rounded, "8.00");
    EXPECT_EQ(nov[0].subtotal, "10.00");
    // Run for the one customer alone, the same.
    RunPeriod("2025-12", "c");
    auto dec = Period("2025-12");
    ASSERT_EQ(dec.size(), 1u);
    EXPECT_EQ(dec[0].subtotal, "10.00");
    EXPECT_EQ(LineOfKind(dec[0], "adjustment"), nullptr);
}

TEST_F(InvoiceStoreTest, VoidIssuesACreditNoteAndMakesRoomForAReplacement) {
    Consume({Call("a", "1", "2025-11-03T10:00:00Z", 1500000)});  // 2.50 + 0.15 tax = 2.65
    RunPeriod("2025-11");
    const std::string number = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "").at(0).number;

    // Partial credit: 1.00 before tax, 0.06 tax.
    billing::CreditNoteDocument part = invoices_->Credit(number, "1.00", "goodwill");
    EXPECT_TRUE(std::regex_match(part.number, std::regex("CN-20[0-9]{2}-000001"))) << part.number;
    EXPECT_EQ(part.tax, "0.06");
    EXPECT_EQ(part.total, "1.06");
    EXPECT_THROW(invoices_->Credit(number, "1.51", "too much"), LedgerError);  // 1.50 left
    EXPECT_THROW(invoices_->Credit(number, "0.001", "sub-fen"), LedgerError);
    EXPECT_THROW(invoices_->Credit(number, "-1", "negative"), LedgerError);

    // Void credits what is left: 1.50 + 0.09 tax.
    billing::CreditNoteDocument cn = invoices_->Void(number, "wrong customer address");
    EXPECT_EQ(cn.kind, "void");
    EXPECT_EQ(cn.subtotal, "1.50");
    EXPECT_EQ(cn.tax, "0.09");
    EXPECT_EQ(cn.invoice_number, number);
    EXPECT_TRUE(std::regex_match(cn.number, std::regex("CN-20[0-9]{2}-000002"))) << cn.number;
    EXPECT_EQ(invoices_->Load(number).status, "void");
    EXPECT_TRUE(invoices_->Verify(number).ok());  // voiding does not change what was hashed
    EXPECT_THROW(invoices_->Void(number, "again"), LedgerError);
    EXPECT_NE(TryExec("UPDATE credit_notes SET total = 0"), "");
    EXPECT_EQ(invoices_->CreditNotes(number).size(), 2u);
    // A credit note by its number, as issued (with the invoice's number and
    // customer name its hash covers); a number that is not one: nullopt.
    std::optional<billing::CreditNoteDocument> found = invoices_->FindCreditNote(part.number);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(billing::CanonicalJson(*found), billing::CanonicalJson(part));
    EXPECT_EQ(found->sha256, part.sha256);
    EXPECT_EQ(found->credit_note_id, part.credit_note_id);
    EXPECT_EQ(invoices_->FindCreditNote(cn.number)->kind, "void");
    EXPECT_FALSE(invoices_->FindCreditNote(number).has_value());
    EXPECT_FALSE(invoices_->FindCreditNote("CN-1999-000001").has_value());

    // The period can be invoiced again, under a new number.
    RunResult r = RunPeriod("2025-11");
    EXPECT_EQ(r.drafts, 1);
    const std::string replacement = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "").at(0).number;
    EXPECT_NE(replacement, number);
    EXPECT_EQ(invoices_->Load(replacement).total, "2.65");
}

// A write given an actor appends its audit rows in its own transaction:
// both commit, or neither (an audit row the table refuses takes the credit
// note with it); a refused write leaves none.
TEST_F(InvoiceStoreTest, WritesWithAnActorCommitTheirAuditRowsWithThem) {
    Consume({Call("a", "1", "2025-11-03T10:00:00Z", 1500000)});  // 2.50 + 0.15 tax = 2.65
    RunPeriod("2025-11");
    const AuditActor by{"key:k1", "finance"};
    auto rows = [&] {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        std::vector<std::string> out;
        for (const auto& r : tx.exec("SELECT actor || ' ' || role || ' ' || action || ' ' || target || ' ' || "
                                     "(detail->>'total') FROM audit_log ORDER BY audit_id")) {
            out.push_back(r[0].as<std::string>());
        }
        return out;
    };
    const std::string number = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "", nullptr, &by).at(0).number;
    ASSERT_EQ(rows().size(), 1u);
    EXPECT_EQ(rows()[0], "key:k1 finance invoice.finalize " + number + " 2.65");
    const billing::CreditNoteDocument part = invoices_->Credit(number, "1.00", "goodwill", &by);
    ASSERT_EQ(rows().size(), 2u);
    EXPECT_EQ(rows()[1], "key:k1 finance credit_note.create " + part.number + " 1.06");
    EXPECT_THROW(invoices_->Credit(number, "5.00", "too much", &by), LedgerError);
    EXPECT_EQ(rows().size(), 2u);
    const AuditActor refused{"key:k1", "nobody"};  // the audit table's CHECK refuses the role
    EXPECT_THROW(invoices_->Credit(number, "0.50", "not audited", &refused), std::exception);
    EXPECT_EQ(invoices_->CreditNotes(number).size(), 1u);  // no note without its audit row
    const billing::CreditNoteDocument cn = invoices_->Void(number, "wrong address", &by);
    ASSERT_EQ(rows().size(), 3u);
    EXPECT_EQ(rows()[2], "key:k1 finance invoice.void " + number + " " + cn.total);
    const std::string replacement = [&] {
        RunPeriod("2025-11");
        return invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "").at(0).number;  // no actor: no row
    }();
    invoices_->Credit(replacement, "0.10", "no actor");
    EXPECT_EQ(rows().size(), 3u);
}

TEST_F(InvoiceStoreTest, PartialCreditsInManyPiecesAddUpToTheInvoiceTaxFairly) {
    Consume({Call("a", "1", "2025-11-03T10:00:00Z", 1500000)});  // 2.50 + 0.15 tax = 2.65
    RunPeriod("2025-11");
    const std::string number = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "").at(0).number;
    // Ten credits of 0.25: 6 % of each is 0.015. Each note's tax is the tax
    // on all credited so far (rounded once, half even) less what earlier
    // notes took, so no note takes 0.02 at the others' expense.
    std::vector<std::string> taxes;
    for (int i = 0; i < 10; ++i) taxes.push_back(invoices_->Credit(number, "0.25", "piece").tax);
    EXPECT_EQ(taxes, (std::vector<std::string>{"0.02", "0.01", "0.01", "0.02", "0.02", "0.01", "0.01", "0.02", "0.02",
                                               "0.01"}));
    EXPECT_THROW(invoices_->Credit(number, "0.01", "nothing left"), LedgerError);
}

TEST_F(InvoiceStoreTest, AnIssuedDocumentKeepsItsIssuerAsItWasWhenIssued) {
    Consume({Call("a", "1", "2025-11-03T10:00:00Z", 1500000), Call("b", "2", "2025-11-03T10:00:00Z", 500000)});
    RunPeriod("2025-11");
    auto finalized = invoices_->FinalizeIds({Period("2025-11").at(0).invoice_id});
    ASSERT_EQ(finalized.size(), 1u);
    billing::CreditNoteDocument before = invoices_->Credit(finalized[0].number, "0.50", "goodwill");
    // The issuer moves and changes its name.
    Issuer moved;
    moved.issuer = "acme";
    moved.name = "上海新名称科技有限公司";
    moved.address = "上海市浦东新区";
    invoices_->SetIssuer(moved);
    const billing::InvoiceDocument inv = invoices_->Load(finalized[0].number);
    EXPECT_EQ(invoices_->IssuerOf(inv).name, "北京示例科技有限公司");  // as when finalized
    EXPECT_EQ(invoices_->IssuerOf(inv).address, "");
    EXPECT_EQ(invoices_->IssuerOf(before).name, "北京示例科技有限公司");
    // A draft, and a credit note issued after the change, show the new details.
    const billing::InvoiceDocument draft = Period("2025-11", "draft").at(0);
    EXPECT_EQ(invoices_->IssuerOf(draft).name, "上海新名称科技有限公司");
    billing::CreditNoteDocument after = invoices_->Credit(finalized[0].number, "0.50", "more goodwill");
    EXPECT_EQ(invoices_->IssuerOf(after).address, "上海市浦东新区");
    // The copy is as frozen as the rest of the document.
    EXPECT_NE(TryExec("UPDATE invoices SET issuer_details = '{}' WHERE status = 'finalized'"), "");
    EXPECT_NE(TryExec("UPDATE credit_notes SET issuer_details = '{}'"), "");
    EXPECT_NE(TryExec("INSERT INTO credit_notes (number, issuer, invoice_id, customer_id, currency, kind, reason, "
                      "subtotal, tax, total, created_at, sha256) SELECT 'CN-X', issuer, invoice_id, customer_id, "
                      "currency, 'partial', 'x', 0.01, 0, 0.01, now(), sha256 FROM invoices WHERE status = 'finalized'"),
              "");  // a credit note without the issuer's details
}

TEST_F(InvoiceStoreTest, TheMarginOfARunCostsItsRollupsByTheirModel) {
    CostStore costs(url_);
    Diagnostics d;
    ASSERT_TRUE(costs.PublishCostCard(R"(cost_card: gpu
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    models:
      m: {rates: {input: "0.50", output: "1.00"}}
)", "gpu.yaml", &d).has_value()) << (d.empty() ? "" : d[0].ToString());
    // 1,000,000 input (revenue 2.00, cost 0.50) and 500,000 output (2.00, 0.50).
    Consume({Call("a", "1", "2025-11-03T10:00:00Z", 1000000, 500000)});
    const CostCatalog cards = costs.LoadCostCards();
    Store store(url_);
    ingest::CatalogSnapshot cat = store.Load();
    RunOptions o;
    o.period_id = *billing::PeriodIdOf("2025-11");
    o.costs = &cards;
    RunResult r = invoices_->Run(cat.catalog, cat.subscriptions, o);
    ASSERT_EQ(r.margin.size(), 1u);
    const billing::MarginRow& row = r.margin[0];
    EXPECT_EQ(row.model, "m");
    EXPECT_EQ(row.served_model, "");  // not routed (the rollups' last column read as it is stored)
    ASSERT_TRUE(row.figures.cost_known()) << row.figures.cost_unknown;
    EXPECT_EQ(row.figures.cost->ToString(2), "1.00");
    EXPECT_EQ(row.figures.revenue.ToString(2), "4.00");
}

// What a superuser's SQL and a careless operator could do to numbers and
// credit notes, refused by the database and by SetIssuer.
TEST_F(InvoiceStoreTest, NumbersAndVoidsCannotBeBypassed) {
    Consume({Call("a", "1", "2025-11-03T10:00:00Z", 300000)});
    RunPeriod("2025-11");
    const std::string number = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "").at(0).number;
    EXPECT_NE(TryExec("UPDATE invoices SET status = 'void', voided_at = now(), void_reason = 'sql'"), "")
        << "a void without its credit note";
    EXPECT_NE(TryExec("TRUNCATE invoice_lines CASCADE"), "");
    EXPECT_NE(TryExec("TRUNCATE invoices CASCADE"), "");
    EXPECT_NE(TryExec("DELETE FROM document_counters"), "");
    EXPECT_NE(TryExec("UPDATE document_counters SET last_number = 0"), "");
    invoices_->Void(number, "wrong");
    EXPECT_NE(TryExec("TRUNCATE credit_notes CASCADE"), "");
    // Another issuer may not take a prefix in use, of either kind; nor name
    // a plan that does not exist.
    Issuer other;
    other.issuer = "other";
    other.name = "Other";
    EXPECT_THROW(invoices_->SetIssuer(other), LedgerError);  // INV and CN are acme's
    other.invoice_prefix = "OTH";
    other.credit_note_prefix = "cn";
    EXPECT_THROW(invoices_->SetIssuer(other), LedgerError);
    other.credit_note_prefix = "OCN";
    other.plans = {"nosuchplan"};
    EXPECT_THROW(invoices_->SetIssuer(other), LedgerError);
    other.plans.clear();
    EXPECT_NO_THROW(invoices_->SetIssuer(other));
}

// A period whose late usage was carried as an adjustment, then voided and
// invoiced again at its full price: the next run takes the adjustment back.
TEST_F(InvoiceStoreTest, AVoidedPeriodsCarriedAdjustmentIsTakenBack) {
    Consume({Call("a", "1", "2025-10-10T00:00:00Z", 400000)});  // 0.80
    RunPeriod("2025-10");
    const std::string oct = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-10"), "").at(0).number;
    Consume({Call("a", "2", "2025-10-11T00:00:00Z", 400000)});  // late: +0.80
    RunPeriod("2025-11");
    invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "");  // carries +0.80 for October
    invoices_->Void(oct, "redo");
    RunPeriod("2025-10");
    auto redo = invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-10"), "");
    ASSERT_EQ(redo.size(), 1u);
    EXPECT_EQ(invoices_->Load(redo[0].number).subtotal, "1.60");  // both calls
    // October is now billed 1.60 by its replacement and 0.80 by November's
    // adjustment: December takes 0.80 back.
    RunResult r = RunPeriod("2025-12");
    EXPECT_EQ(r.adjustments, 1);
    auto dec = Period("2025-12");
    ASSERT_EQ(dec.size(), 1u);
    const billing::DocumentLine* adj = LineOfKind(dec[0], "adjustment");
    ASSERT_NE(adj, nullptr);
    EXPECT_EQ(adj->amount_rounded, "-0.80");
}

TEST_F(InvoiceStoreTest, DraftsThatCouldNotBePricedAreNeverFinalized) {
    Consume({Call("a", "1", "2025-11-03T10:00:00Z", 300000)});
    RunPeriod("2025-11");
    // The usage of a model the plan does not price (written by hand: the
    // rater would refuse it) makes the draft carry an error.
    ASSERT_EQ(TryExec("INSERT INTO rollups VALUES ('a', " + std::to_string(*billing::PeriodIdOf("2025-11")) +
                      ", 490000, 'p', 'v1', 'm', 0, -1, -1, 0, 'input', 9223372036854775807, 0)"),
              "");
    RunResult r = RunPeriod("2025-11");
    EXPECT_EQ(r.not_priced, 1);
    auto docs = Period("2025-11");
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_NE(docs[0].error, "");
    EXPECT_THROW(invoices_->FinalizeIds({docs[0].invoice_id}), LedgerError);
    EXPECT_TRUE(invoices_->FinalizeDue().empty());
}

TEST_F(InvoiceStoreTest, ExportsDoNotDependOnBatching) {
    std::vector<Event> events;
    for (int i = 0; i < 60; ++i) {
        events.push_back(Call(i % 2 == 0 ? "a" : "b", "e" + std::to_string(i),
                              "2025-11-0" + std::to_string(1 + i % 9) + "T0" + std::to_string(i % 10) + ":00:00Z",
                              12345 * (i + 1), 777 * i));
    }
    Consume(events, 7);
    RunPeriod("2025-11");
    invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "");
    std::string csv_one = billing::ExportCsv(Period("2025-11"));

    // Again in a fresh ledger, the events reversed, in batches of 13.
    TearDown();
    SetUp();
    std::reverse(events.begin(), events.end());
    Consume(events, 13);
    RunPeriod("2025-11");
    invoices_->FinalizePeriod(*billing::PeriodIdOf("2025-11"), "");
    std::vector<billing::InvoiceDocument> again = Period("2025-11");
    // Everything but the finalization instant (and so the hash) is equal.
    std::string csv_two = billing::ExportCsv(again);
    auto strip = [](std::string s) {
        return std::regex_replace(s, std::regex("[0-9a-f]{64}"), "HASH");
    };
    EXPECT_EQ(strip(csv_one), strip(csv_two));
    EXPECT_GT(csv_one.size(), 500u);
}

}  // namespace
}  // namespace tally::ledger

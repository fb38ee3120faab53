#include "ledger/invoice_store.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <exception>
#include <thread>
#include <mutex>
#include <condition_variable>
#include <map>
#include <pqxx/pqxx>
#include <pqxx/tablereader>
#include <set>
#include <string_view>
#include <utility>

#include "base/assert.h"
#include "billing/invoice_run.h"
#include "ledger/connect.h"
#include "ledger/copy_rows.h"
#include "ledger/audit_rows.h"
#include "ledger/migrations.h"
#include "ledger/rollup_rows.h"
#include "pricing/rollup_records.h"

namespace tally::ledger {

namespace {

// Taken by invoice runs, finalizations, voids and credits (transaction
// scoped): a run's snapshot never races a finalization of the drafts it
// replaces. Any fixed key ("invoice").
constexpr int64_t kInvoiceLock = 0x696e766f696365;

// Timestamps cross the wire as integer milliseconds since the epoch, so
// their text is FormatRfc3339's whatever the session's settings.
std::string Ms(const std::string& column) {
    return "(extract(epoch FROM " + column + ") * 1000)::bigint";
}
std::string MsText(const pqxx::field& f) {
    if (f.is_null()) return "";
    return FormatRfc3339(Instant{std::chrono::milliseconds(f.as<int64_t>())});
}
std::string TextOr(const pqxx::field& f) {
    return f.is_null() ? std::string() : f.as<std::string>();
}

Decimal ParseStoredDecimal(const std::string& text) {
    std::optional<Decimal> d = Decimal::Parse(text);
    if (!d) throw LedgerError("stored amount '" + text + "' is not a decimal Tally can read");
    return *d;
}

std::string PgArray(const std::vector<std::string>& values) {
    std::string out = "{";
    for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += ',';
        out += '"';
        for (char c : values[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

const std::string kInvoiceColumns =
    "invoice_id, status, COALESCE(number, ''), issuer, customer_id, customer_name, plan, period, period_id, " +
    Ms("period_start") + ", " + Ms("period_end") +
    ", time_zone, currency, rounding, round_at, array_to_json(plan_versions)::text, calls, "
    "exact_subtotal::text, subtotal::text, tax_percent::text, tax::text, total::text, amount_due::text, "
    "grants::text, error, " +
    Ms("cutoff") + ", " + Ms("grace_until") + ", " + Ms("finalized_at") + ", " + Ms("voided_at") +
    ", COALESCE(void_reason, ''), COALESCE(sha256, '')";

const std::string kLineColumns =
    "invoice_id, line_no, kind, description, plan_version, model, unit, band, output_condition, time_window, "
    "batch, thinking, tier, quantity, rate::text, rate_per, amount::text, amount_rounded::text, " +
    Ms("first_hour") + ", " + Ms("last_hour") +
    ", COALESCE(adjusts_period, ''), COALESCE(adjusts_invoice, ''), basis_calls, "
    "COALESCE(basis_subtotal::text, '')";

// An invoice row without its plan versions and grants (LoadWhere adds them).
billing::InvoiceDocument DocumentOf(const pqxx::row& r) {
    billing::InvoiceDocument d;
    d.invoice_id = r[0].as<int64_t>();
    d.status = r[1].as<std::string>();
    d.number = r[2].as<std::string>();
    d.issuer = r[3].as<std::string>();
    d.customer = r[4].as<std::string>();
    d.customer_name = r[5].as<std::string>();
    d.plan = r[6].as<std::string>();
    d.period = r[7].as<std::string>();
    d.period_id = r[8].as<int32_t>();
    d.period_start = MsText(r[9]);
    d.period_end = MsText(r[10]);
    d.time_zone = r[11].as<std::string>();
    d.currency = r[12].as<std::string>();
    d.rounding = r[13].as<std::string>();
    d.round_at = r[14].as<std::string>();
    d.calls = r[16].as<int64_t>();
    d.exact_subtotal = r[17].as<std::string>();
    d.subtotal = r[18].as<std::string>();
    d.tax_percent = r[19].as<std::string>();
    d.tax = r[20].as<std::string>();
    d.total = r[21].as<std::string>();
    d.amount_due = r[22].as<std::string>();
    d.error = r[24].as<std::string>();
    d.cutoff = MsText(r[25]);
    d.grace_until = MsText(r[26]);
    d.finalized_at = MsText(r[27]);
    d.voided_at = MsText(r[28]);
    d.void_reason = r[29].as<std::string>();
    d.sha256 = r[30].as<std::string>();
    return d;
}

billing::DocumentLine LineOf(const pqxx::row& r) {
    billing::DocumentLine l;
    l.line_no = r[1].as<int32_t>();
    l.kind = r[2].as<std::string>();
    l.description = r[3].as<std::string>();
    l.plan_version = r[4].as<std::string>();
    l.model = r[5].as<std::string>();
    l.unit = r[6].as<std::string>();
    l.band = r[7].as<std::string>();
    l.output_condition = r[8].as<std::string>();
    l.window = r[9].as<std::string>();
    l.batch = r[10].as<bool>();
    l.thinking = r[11].as<bool>();
    l.tier = r[12].as<std::string>();
    if (!r[13].is_null()) l.quantity = r[13].as<int64_t>();
    l.rate = TextOr(r[14]);
    l.rate_per = r[15].is_null() ? 0 : r[15].as<int64_t>();
    l.amount = r[16].as<std::string>();
    l.amount_rounded = r[17].as<std::string>();
    l.first_hour = MsText(r[18]);
    l.last_hour = MsText(r[19]);
    l.adjusts_period = r[20].as<std::string>();
    l.adjusts_invoice = r[21].as<std::string>();
    if (!r[22].is_null()) l.basis_calls = r[22].as<int64_t>();
    l.basis_subtotal = r[23].as<std::string>();
    return l;
}

// Loads invoices matching `where` (a condition on invoices, parameters $1..)
// with their lines, ordered by period, customer, plan.
template <typename... Args>
std::vector<billing::InvoiceDocument> LoadWhere(pqxx::transaction_base& tx, const std::string& where, Args&&... args) {
    std::vector<billing::InvoiceDocument> docs;
    std::map<int64_t, size_t> index;
    const pqxx::result found = tx.exec_params("SELECT " + kInvoiceColumns + " FROM invoices WHERE " + where +
                                                  " ORDER BY period_id, customer_id, plan, invoice_id",
                                              std::forward<Args>(args)...);
    for (const pqxx::row& r : found) {
        index[r[0].as<int64_t>()] = docs.size();
        docs.push_back(DocumentOf(r));
    }
    if (docs.empty()) return docs;
    std::vector<std::string> ids;
    for (const auto& [id, _] : index) ids.push_back(std::to_string(id));
    const std::string id_array = PgArray(ids);
    for (const auto& r : tx.exec_params("SELECT " + kLineColumns +
                                            " FROM invoice_lines WHERE invoice_id = ANY($1::bigint[]) "
                                            "ORDER BY invoice_id, line_no",
                                        id_array)) {
        docs[index.at(r[0].as<int64_t>())].lines.push_back(LineOf(r));
    }
    // The arrays and JSON this file writes, read back with PostgreSQL's own
    // functions, for every invoice at once.
    for (const auto& r : tx.exec_params("SELECT i.invoice_id, v.val FROM invoices i, unnest(i.plan_versions) "
                                        "WITH ORDINALITY AS v (val, ord) WHERE i.invoice_id = ANY($1::bigint[]) "
                                        "ORDER BY i.invoice_id, v.ord",
                                        id_array)) {
        docs[index.at(r[0].as<int64_t>())].plan_versions.push_back(r[1].as<std::string>());
    }
    for (const auto& r : tx.exec_params("SELECT i.invoice_id, g.val->>'name', g.val->>'amount' FROM invoices i, "
                                        "jsonb_array_elements(i.grants) WITH ORDINALITY AS g (val, ord) "
                                        "WHERE i.invoice_id = ANY($1::bigint[]) ORDER BY i.invoice_id, g.ord",
                                        id_array)) {
        docs[index.at(r[0].as<int64_t>())].grants.push_back({r[1].as<std::string>(), r[2].as<std::string>()});
    }
    return docs;
}

// "17" is an id, anything else a number.
billing::InvoiceDocument LoadOne(pqxx::transaction_base& tx, const std::string& id_or_number, bool for_update) {
    const bool is_id = !id_or_number.empty() && id_or_number.size() <= 18 &&
                       id_or_number.find_first_not_of("0123456789") == std::string::npos;
    const std::string where = is_id ? "invoice_id = $1::bigint" : "number = $1";
    if (for_update) tx.exec_params("SELECT 1 FROM invoices WHERE " + where + " FOR UPDATE", id_or_number);
    std::vector<billing::InvoiceDocument> docs = LoadWhere(tx, where, id_or_number);
    if (docs.empty()) throw LedgerError("no invoice " + id_or_number);
    TALLY_ASSERT(docs.size() == 1);
    return std::move(docs.front());
}

struct IssuerMap {
    std::map<std::string, std::string> by_plan;
    std::string default_issuer;
    std::string For(const std::string& plan) const {
        auto it = by_plan.find(plan);
        return it != by_plan.end() ? it->second : default_issuer;
    }
};

IssuerMap ReadIssuers(pqxx::transaction_base& tx) {
    IssuerMap out;
    for (const auto& r : tx.exec("SELECT issuer FROM issuers WHERE is_default")) out.default_issuer = r[0].as<std::string>();
    for (const auto& r : tx.exec("SELECT plan, issuer FROM issuer_plans")) {
        out.by_plan[r[0].as<std::string>()] = r[1].as<std::string>();
    }
    return out;
}

// The next number of `kind` for `issuer` in `year` (gapless: taken in the
// caller's transaction).
int64_t NextNumber(pqxx::transaction_base& tx, const std::string& issuer, int year, const std::string& kind) {
    return tx
        .exec_params1("INSERT INTO document_counters (issuer, year, kind, last_number) VALUES ($1, $2, $3, 1) "
                      "ON CONFLICT (issuer, year, kind) DO UPDATE SET last_number = document_counters.last_number + 1 "
                      "RETURNING last_number",
                      issuer, year, kind)[0]
        .as<int64_t>();
}

// Undoes COPY's text escaping of one field (only backslash sequences can
// occur: identifiers hold no control characters, but may hold a backslash).
std::string_view Unescaped(std::string_view field, std::string* buffer) {
    if (field.find('\\') == std::string_view::npos) return field;
    buffer->clear();
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] != '\\' || i + 1 == field.size()) {
            *buffer += field[i];
            continue;
        }
        const char c = field[++i];
        *buffer += c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
    }
    return *buffer;
}

// The columns FoldRollups reads: a cell's fields first, then unit,
// quantity and calls, so that a row of the same cell as the row before
// starts with the same text. Not the project: no price depends on it
// (pricing/project_cap.h), so the run folds a cell's projects together
// (rows of one cell and unit, one per project, are added as repeats).
constexpr const char* kFoldColumns =
    "customer_id, period, hour, plan, version, model, band, condition, time_window, flags, served_model, unit, "
    "quantity, calls";
constexpr size_t kFoldCellColumns = 11;

// The rollups and deltas of these customers up to `period_id`, through
// COPY (SELECT ...) TO STDOUT: rows streamed as text lines, without the
// result set libpq builds for a query (a third of an invoice run's time
// went there), each added to `folder` as views of its line (no record is
// made per row: 21.6 M of them made a fifth of the bench's CPU, most of it
// the kernel's paging in the vectors that held them). A row whose cell's
// text equals the row before's (a cell's unit rows come together) has only
// its last three fields parsed. The snapshot is the transaction's, as for
// any statement. Returns the number of rows.
int64_t FoldRollups(pqxx::transaction_base& tx, const std::string& customers, int32_t period_id,
                    RecordsFolder* folder) {
    const std::string where = " WHERE customer_id = ANY(" + tx.quote(customers) + "::text[]) AND period <= " +
                              std::to_string(period_id);
    const std::string query = std::string("(SELECT ") + kFoldColumns + " FROM rollups" + where + " UNION ALL SELECT " +
                              kFoldColumns + " FROM rollup_deltas" + where + ")";
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    pqxx::tablereader reader(tx, query);
#pragma GCC diagnostic pop
    std::string line;
    std::string cell;  // the text of the previous row's cell fields
    bool any = false;  // whether `cell` holds a row's
    std::array<std::string, kFoldCellColumns + 1> buffers;  // unescaped text fields (only those with a backslash)
    std::array<std::string_view, kFoldCellColumns> f;
    int64_t rows = 0;
    while (reader.get_raw_line(line)) {
        // get_raw_line keeps the newline that ends each row of COPY's text
        // format (it was read as part of served_model, the last column,
        // before: "\n" for every row, so an invoice run's margin rows costed
        // no call).
        if (!line.empty() && line.back() == '\n') line.pop_back();
        // The last three fields, from the end: the text before them is the cell's.
        std::array<size_t, 3> tabs{};  // of calls, quantity, unit
        size_t found = 0;
        for (size_t i = line.size(); i > 0 && found < tabs.size(); --i) {
            if (line[i - 1] == '\t') tabs[found++] = i - 1;
        }
        if (found < tabs.size()) throw LedgerError("a rollup row came back with fewer than 14 columns");
        const std::string_view head(line.data(), tabs[2]);
        const std::string_view unit = Unescaped(std::string_view(line).substr(tabs[2] + 1, tabs[1] - tabs[2] - 1),
                                                &buffers[kFoldCellColumns]);
        const auto quantity = internal::IntOf<int64_t>(std::string_view(line).substr(tabs[1] + 1, tabs[0] - tabs[1] - 1));
        const auto calls = internal::IntOf<int64_t>(std::string_view(line).substr(tabs[0] + 1));
        TALLY_ASSERT(!unit.empty() || quantity == 0);
        TALLY_ASSERT(unit.empty() || calls == 0);
        ++rows;
        if (any && head == cell) {
            folder->AddSameCell(unit, quantity, calls);
            continue;
        }
        size_t n = 0;
        size_t at = 0;
        for (size_t tab = head.find('\t'); tab != std::string_view::npos; tab = head.find('\t', at)) {
            if (n + 1 == kFoldCellColumns) throw LedgerError("a rollup row came back with more than 14 columns");
            f[n++] = head.substr(at, tab - at);
            at = tab + 1;
        }
        f[n++] = head.substr(at);
        if (n != kFoldCellColumns) throw LedgerError("a rollup row came back with " + std::to_string(n + 3) + " columns");
        RecordView r;
        r.customer = Unescaped(f[0], &buffers[0]);
        r.period = internal::IntOf<int32_t>(f[1]);
        r.hour = internal::IntOf<int32_t>(f[2]);
        r.plan = Unescaped(f[3], &buffers[3]);
        r.version = Unescaped(f[4], &buffers[4]);
        r.model = Unescaped(f[5], &buffers[5]);
        r.band = internal::IntOf<int16_t>(f[6]);
        r.condition = internal::IntOf<int16_t>(f[7]);
        r.time_window = internal::IntOf<int16_t>(f[8]);
        r.flags = internal::IntOf<int16_t>(f[9]);
        r.served_model = Unescaped(f[10], &buffers[10]);
        r.unit = unit;
        r.quantity = quantity;
        r.calls = calls;
        folder->Add(r);
        cell.assign(head);
        any = true;
    }
    reader.complete();
    return rows;
}

// What has been invoiced per finalized (customer, plan, period) of these
// customers up to `period_id`: the finalized subtotal without its own
// adjustment lines (those bill other periods), plus the adjustments for the
// period on invoices that this run keeps (not void, not a draft it
// replaces), whichever invoice of the period they named: after a void and
// a replacement, what was already carried still counts.
// SQL for the details of issuer `issuer_sql` (an expression) as copied onto
// a document when it is issued (sql/0007_issuer_as_issued.sql).
std::string IssuerDetails(const std::string& issuer_sql) {
    return "(SELECT jsonb_build_object('name', s.name, 'address', s.address, 'tax_id', s.tax_id, 'email', s.email) "
           "FROM issuers s WHERE s.issuer = " + issuer_sql + ")";
}

std::vector<billing::InvoicedPeriod> ReadInvoiced(pqxx::transaction_base& tx, const std::string& customers,
                                                  int32_t period_id) {
    std::vector<billing::InvoicedPeriod> out;
    for (const auto& r : tx.exec_params(
             "SELECT f.customer_id, f.plan, f.period_id, f.number, f.currency, "
             "  (f.subtotal - COALESCE((SELECT sum(own.amount_rounded) FROM invoice_lines own "
             "                         WHERE own.invoice_id = f.invoice_id AND own.kind = 'adjustment'), 0))::text, "
             "  COALESCE((SELECT sum(l.amount_rounded) FROM invoice_lines l JOIN invoices i USING (invoice_id) "
             "            WHERE l.kind = 'adjustment' AND l.adjusts_period = f.period AND i.customer_id = f.customer_id "
             "              AND i.plan = f.plan AND i.status <> 'void' "
             "              AND NOT (i.status = 'draft' AND i.period_id = $2)), 0)::text "
             "FROM invoices f WHERE f.status = 'finalized' AND f.customer_id = ANY($1::text[]) AND f.period_id <= $2",
             customers, period_id)) {
        std::optional<Currency> currency = Currency::FromCode(r[4].as<std::string>());
        if (!currency) throw LedgerError("stored invoice " + r[3].as<std::string>() + " has an unknown currency");
        billing::InvoicedPeriod p;
        p.customer = r[0].as<std::string>();
        p.plan = r[1].as<std::string>();
        p.period_id = r[2].as<int32_t>();
        p.invoice_number = r[3].as<std::string>();
        p.invoiced = Amount(*currency, ParseStoredDecimal(r[5].as<std::string>())) +
                     Amount(*currency, ParseStoredDecimal(r[6].as<std::string>()));
        out.push_back(std::move(p));
    }
    return out;
}

std::string GrantsJson(const billing::InvoiceDocument& d) {
    std::string out = "[";
    for (size_t i = 0; i < d.grants.size(); ++i) {
        out += (i > 0 ? "," : "") + std::string("{\"name\":") + billing::JsonQuote(d.grants[i].name) +
               ",\"amount\":" + billing::JsonQuote(d.grants[i].amount) + "}";
    }
    return out + "]";
}

}  // namespace

struct InvoiceStore::Impl {
    explicit Impl(const std::string& u) : url(u), conn(Connect(u)) {}
    std::string url;
    std::unique_ptr<pqxx::connection> conn;
};

namespace {

// Reads the rollups of a run's chunks ahead, on a connection of its own in
// the run's snapshot (exported by the run's transaction, imported here), so
// PostgreSQL sends the next chunk while this process prices the current one
// (2 cores). One chunk waits at most; an error is handed to the taker.
class ChunkReader {
   public:
    // The rollups of one chunk, as FromRecords gives them, and how many rows made them.
    struct Chunk {
        RecordsRead read;
        int64_t rows = 0;
    };

    ChunkReader(const std::string& url, const std::string& snapshot, const Catalog& catalog,
                const std::vector<std::string>& chunks, int32_t period_id)
        : conn_(Connect(url)), folder_(catalog), chunks_(chunks), period_id_(period_id) {
        thread_ = std::thread([this, snapshot] { Loop(snapshot); });
    }
    ~ChunkReader() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    ChunkReader(const ChunkReader&) = delete;
    ChunkReader& operator=(const ChunkReader&) = delete;

    // The next chunk, in order; rethrows the reader's error.
    Chunk Take() {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return ready_ || error_; });
        if (error_) std::rethrow_exception(error_);
        ready_ = false;
        cv_.notify_all();
        return std::move(next_);
    }

   private:
    void Loop(const std::string& snapshot) {
        try {
            pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::read_only> tx(*conn_);
            tx.exec0("SET TRANSACTION SNAPSHOT " + tx.quote(snapshot));
            tx.exec0("SET LOCAL enable_seqscan = off");
            // Neither JIT nor parallel workers (InvoiceStore::Run): the
            // seqscan penalty priced every chunk's read above JIT's
            // thresholds (about 2 s of compiling per chunk, in each worker),
            // and the run keeps both cores busy without workers.
            tx.exec0("SET LOCAL jit = off");
            tx.exec0("SET LOCAL max_parallel_workers_per_gather = 0");
            for (const std::string& chunk : chunks_) {
                Chunk read;
                read.rows = FoldRollups(tx, chunk, period_id_, &folder_);
                read.read = folder_.Finish();
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [this] { return !ready_ || stop_; });
                if (stop_) return;
                next_ = std::move(read);
                ready_ = true;
                cv_.notify_all();
            }
            tx.commit();
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu_);
            error_ = std::current_exception();
            cv_.notify_all();
        }
    }

    std::unique_ptr<pqxx::connection> conn_;
    RecordsFolder folder_;  // the reading thread's
    const std::vector<std::string>& chunks_;
    const int32_t period_id_;
    std::mutex mu_;
    std::condition_variable cv_;
    Chunk next_;
    bool ready_ = false;
    bool stop_ = false;
    std::exception_ptr error_;
    std::thread thread_;
};

}  // namespace

InvoiceStore::InvoiceStore(const std::string& database_url) : impl_(std::make_unique<Impl>(database_url)) {}
InvoiceStore::~InvoiceStore() = default;

void InvoiceStore::SetIssuer(const Issuer& is) {
    if (is.issuer.empty() || is.name.empty()) throw LedgerError("an issuer needs an id and a legal name");
    for (const std::string* prefix : {&is.invoice_prefix, &is.credit_note_prefix}) {
        if (prefix->empty() || prefix->size() > 16 || prefix->find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos) {
            throw LedgerError("a number prefix is 1 to 16 letters or digits, not '" + *prefix + "'");
        }
    }
    if (is.issuer.size() > 64 || is.issuer.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != std::string::npos) {
        throw LedgerError("an issuer id is 1 to 64 letters, digits, '_', '.' or '-', not '" + is.issuer + "'");
    }
    for (const std::string* text : {&is.name, &is.address, &is.tax_id, &is.email}) {
        if (text->size() > 1000) throw LedgerError("issuer fields are at most 1000 bytes");
    }
    auto upper = [](std::string t) {
        for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return t;
    };
    if (upper(is.invoice_prefix) == upper(is.credit_note_prefix)) {
        throw LedgerError("the invoice and credit note prefixes must differ (" + is.invoice_prefix + ")");
    }
    pqxx::work tx(*impl_->conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kInvoiceLock);
    // Numbers are unique across issuers: no prefix (of either kind) twice.
    for (const auto& r : tx.exec_params("SELECT issuer, invoice_prefix, credit_note_prefix FROM issuers WHERE issuer <> $1",
                                        is.issuer)) {
        for (const std::string* mine : {&is.invoice_prefix, &is.credit_note_prefix}) {
            for (int col : {1, 2}) {
                if (upper(*mine) == upper(r[col].as<std::string>())) {
                    throw LedgerError("prefix " + *mine + " is issuer " + r[0].as<std::string>() +
                                      "'s: numbers would collide");
                }
            }
        }
    }
    for (const std::string& plan : is.plans) {
        if (tx.exec_params("SELECT 1 FROM plan_versions WHERE plan = $1 LIMIT 1", plan).empty()) {
            throw LedgerError("no published plan " + plan);
        }
    }
    if (is.is_default) tx.exec0("UPDATE issuers SET is_default = false WHERE is_default");
    tx.exec_params0(
        "INSERT INTO issuers (issuer, name, address, tax_id, email, invoice_prefix, credit_note_prefix, is_default) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (issuer) DO UPDATE SET name = EXCLUDED.name, "
        "address = EXCLUDED.address, tax_id = EXCLUDED.tax_id, email = EXCLUDED.email, "
        "invoice_prefix = EXCLUDED.invoice_prefix, credit_note_prefix = EXCLUDED.credit_note_prefix, "
        "is_default = EXCLUDED.is_default OR issuers.is_default",
        is.issuer, is.name, is.address, is.tax_id, is.email, is.invoice_prefix, is.credit_note_prefix, is.is_default);
    for (const std::string& plan : is.plans) {
        tx.exec_params0("INSERT INTO issuer_plans (plan, issuer) VALUES ($1, $2) "
                        "ON CONFLICT (plan) DO UPDATE SET issuer = EXCLUDED.issuer",
                        plan, is.issuer);
    }
    // The first issuer is the default one.
    tx.exec0("UPDATE issuers SET is_default = true WHERE NOT EXISTS (SELECT 1 FROM issuers WHERE is_default) "
             "AND issuer = (SELECT min(issuer) FROM issuers)");
    tx.commit();
}

namespace {

// The issuer of row `id` of `table` (invoices or credit_notes) with the
// details copied onto it when it was issued, else (a draft) the current ones.
Issuer IssuerOfRow(pqxx::connection& conn, const std::string& table, const std::string& id_column, int64_t id) {
    pqxx::read_transaction tx(conn);
    const pqxx::result r = tx.exec_params(
        "SELECT s.issuer, COALESCE(d.issuer_details->>'name', s.name), COALESCE(d.issuer_details->>'address', s.address), "
        "COALESCE(d.issuer_details->>'tax_id', s.tax_id), COALESCE(d.issuer_details->>'email', s.email), "
        "s.invoice_prefix, s.credit_note_prefix, s.is_default FROM " + table + " d JOIN issuers s ON s.issuer = d.issuer "
        "WHERE d." + id_column + " = $1",
        id);
    if (r.empty()) throw LedgerError("no " + std::string(table == "invoices" ? "invoice" : "credit note") + " " + std::to_string(id));
    Issuer is;
    is.issuer = r[0][0].as<std::string>();
    is.name = r[0][1].as<std::string>();
    is.address = r[0][2].as<std::string>();
    is.tax_id = r[0][3].as<std::string>();
    is.email = r[0][4].as<std::string>();
    is.invoice_prefix = r[0][5].as<std::string>();
    is.credit_note_prefix = r[0][6].as<std::string>();
    is.is_default = r[0][7].as<bool>();
    tx.commit();
    return is;
}

}  // namespace

Issuer InvoiceStore::IssuerOf(const billing::InvoiceDocument& invoice) {
    return IssuerOfRow(*impl_->conn, "invoices", "invoice_id", invoice.invoice_id);
}

Issuer InvoiceStore::IssuerOf(const billing::CreditNoteDocument& note) {
    return IssuerOfRow(*impl_->conn, "credit_notes", "credit_note_id", note.credit_note_id);
}

std::vector<Issuer> InvoiceStore::Issuers() {
    pqxx::work tx(*impl_->conn);
    std::vector<Issuer> out;
    for (const auto& r : tx.exec("SELECT issuer, name, address, tax_id, email, invoice_prefix, credit_note_prefix, "
                                 "is_default, COALESCE((SELECT array_to_json(array_agg(plan ORDER BY plan))::text "
                                 "FROM issuer_plans p WHERE p.issuer = i.issuer), '[]') FROM issuers i ORDER BY issuer")) {
        Issuer is;
        is.issuer = r[0].as<std::string>();
        is.name = r[1].as<std::string>();
        is.address = r[2].as<std::string>();
        is.tax_id = r[3].as<std::string>();
        is.email = r[4].as<std::string>();
        is.invoice_prefix = r[5].as<std::string>();
        is.credit_note_prefix = r[6].as<std::string>();
        is.is_default = r[7].as<bool>();
        for (const auto& p : tx.exec_params("SELECT json_array_elements_text($1::json)", r[8].as<std::string>())) {
            is.plans.push_back(p[0].as<std::string>());
        }
        out.push_back(std::move(is));
    }
    tx.commit();
    return out;
}

RunResult InvoiceStore::Run(const Catalog& catalog, const std::vector<Subscription>& subscriptions,
                            const RunOptions& o) {
    TALLY_ASSERT(o.kind == "run" || o.kind == "rerate");
    TALLY_ASSERT(o.customers_per_chunk > 0);
    if (catalog.plans.empty()) throw LedgerError("no plans published yet");
    RunResult result;
    pqxx::transaction<pqxx::isolation_level::repeatable_read> tx(*impl_->conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kInvoiceLock);
    // No JIT: the run's statements are many and short, and with seqscan
    // off (below) every plan that keeps a sequential scan costs above JIT's
    // thresholds, so each would be compiled with inlining first (about 2 s
    // of CPU per chunk on the 10,000-customer bench).
    tx.exec0("SET LOCAL jit = off");
    const IssuerMap issuers = ReadIssuers(tx);
    for (const Plan& plan : catalog.plans) {
        if (issuers.For(plan.name).empty()) {
            throw LedgerError("no issuer for the invoices of plan " + plan.name +
                              ": add one with `tally issuer set ID --name NAME` (the first one is the default)");
        }
    }
    const std::string period = billing::PeriodLabel(o.period_id);
    pqxx::row cut = tx.exec1("SELECT " + Ms("max(updated_at)") +
                             ", COALESCE(json_agg(json_build_object('group', consumer_group, 'topic', topic, "
                             "'partition', kafka_partition, 'next_offset', next_offset) ORDER BY consumer_group, topic, "
                             "kafka_partition), '[]')::text FROM consumer_offsets");
    result.cutoff = MsText(cut[0]);
    result.run_id = tx.exec_params1("INSERT INTO invoice_runs (kind, period, customer_id, cutoff, offsets) "
                                    "VALUES ($1, $2, NULLIF($3, ''), timestamptz 'epoch' + NULLIF($4, '')::bigint * interval '1 millisecond', "
                                    "$5::jsonb) RETURNING run_id",
                                    o.kind, period, o.customer, cut[0].is_null() ? std::string() : std::to_string(cut[0].as<int64_t>()),
                                    cut[1].as<std::string>())[0]
                        .as<int64_t>();

    // Everyone who may get a draft: usage in the period, a finalized
    // earlier period (late usage becomes an adjustment), or a draft of the
    // period to replace. The customers of the rollups are found by walking
    // the primary key's distinct customer ids (one index probe each, then
    // one for the period): `SELECT ... WHERE period = $1` read and sorted
    // the whole table (24 s of a 10,000-customer run).
    const std::string with_usage =
        o.customer.empty()
            ? "WITH RECURSIVE ids AS (SELECT (SELECT min(customer_id) FROM rollups) AS id UNION ALL "
              "  SELECT (SELECT min(r.customer_id) FROM rollups r WHERE r.customer_id > ids.id) FROM ids "
              "  WHERE ids.id IS NOT NULL) "
              "SELECT id FROM ids WHERE id IS NOT NULL "
              "  AND EXISTS (SELECT 1 FROM rollups r WHERE r.customer_id = ids.id AND r.period = $1) "
            : "SELECT customer_id FROM rollups WHERE period = $1 AND customer_id = $2 ";
    std::vector<std::string> customers;
    for (const auto& r : tx.exec_params(
             with_usage +
                 "UNION SELECT customer_id FROM rollup_deltas WHERE period = $1 AND ($2 = '' OR customer_id = $2) "
                 "UNION SELECT customer_id FROM invoices WHERE ($2 = '' OR customer_id = $2) "
                 "  AND ((status = 'finalized' AND period_id < $1) OR (status = 'draft' AND period_id = $1)) "
                 "ORDER BY 1",
             o.period_id, o.customer)) {
        customers.push_back(r[0].as<std::string>());
    }
    // And everyone whose subscription may bill a minimum commitment, usage
    // or not (PriceRollups' CommitmentHorizon decides).
    for (const Subscription& s : subscriptions) {
        if ((o.customer.empty() || s.customer == o.customer) && MayCommit(catalog, s)) customers.push_back(s.customer);
    }
    std::sort(customers.begin(), customers.end());
    customers.erase(std::unique(customers.begin(), customers.end()), customers.end());
    result.customers = static_cast<int64_t>(customers.size());
    // Each chunk reads a few hundred customers of a table holding all of
    // them: through the primary key, never a sequential scan, whatever the
    // planner estimates for `customer_id = ANY(...)` (a scan of the whole
    // table per chunk made reading 80 % of a 10,000-customer run).
    tx.exec0("SET LOCAL enable_seqscan = off");
    const std::string& default_plan = catalog.plans.front().name;
    std::vector<std::string> chunks;
    std::vector<size_t> chunk_ends;
    std::vector<std::vector<std::string>> chunk_customers;
    for (size_t begin = 0; begin < customers.size(); begin += static_cast<size_t>(o.customers_per_chunk)) {
        const size_t end = std::min(customers.size(), begin + static_cast<size_t>(o.customers_per_chunk));
        chunk_customers.emplace_back(customers.begin() + static_cast<std::ptrdiff_t>(begin),
                                     customers.begin() + static_cast<std::ptrdiff_t>(end));
        chunks.push_back(PgArray(chunk_customers.back()));
        chunk_ends.push_back(end);
    }
    const std::string snapshot = tx.exec1("SELECT pg_export_snapshot()")[0].as<std::string>();
    ChunkReader reader(impl_->url, snapshot, catalog, chunks, o.period_id);
    for (size_t c = 0; c < chunks.size(); ++c) {
        const std::string& chunk = chunks[c];
        const size_t end = chunk_ends[c];
        const auto t0 = std::chrono::steady_clock::now();
        ChunkReader::Chunk chunk_read = reader.Take();  // waits only when reading is behind
        const auto t1 = std::chrono::steady_clock::now();
        const RecordsRead& read = chunk_read.read;
        result.unresolved_rollups += read.unresolved;
        std::vector<billing::InvoicedPeriod> invoiced = ReadInvoiced(tx, chunk, o.period_id);
        CommitmentHorizon horizon;  // commitments bill this period, and earlier ones alike, without usage
        horizon.through = o.period_id;
        horizon.customers = std::move(chunk_customers[c]);
        for (const billing::InvoicedPeriod& f : invoiced) {
            auto [first, fresh] = horizon.first_billed.try_emplace(f.customer, f.period_id);
            if (!fresh) first->second = std::min(first->second, f.period_id);
        }
        std::vector<Invoice> priced = PriceRollups(catalog, subscriptions, default_plan, {}, read.rollups, &horizon);
        const auto t2 = std::chrono::steady_clock::now();
        billing::RunDecision decision = billing::DecideRun(catalog, subscriptions, o.period_id, priced, invoiced);
        result.left_finalized += decision.left_finalized;
        if (o.costs != nullptr) {
            // (customer, plan) of each draft, sorted once: a search per
            // priced invoice, not a pass over the chunk's drafts.
            std::vector<std::pair<std::string_view, std::string_view>> drafted;
            drafted.reserve(decision.drafts.size());
            for (const billing::Draft& d : decision.drafts) drafted.emplace_back(d.invoice.customer, d.invoice.plan);
            std::sort(drafted.begin(), drafted.end());
            std::vector<Invoice> own;  // the drafts as priced, before adjustments for other periods
            for (const Invoice& inv : priced) {
                if (billing::PeriodIdOf(inv.period) != o.period_id) continue;
                const std::pair<std::string_view, std::string_view> key(inv.customer, inv.plan);
                if (std::binary_search(drafted.begin(), drafted.end(), key)) own.push_back(inv);
            }
            std::vector<billing::MarginRow> rows = billing::ComputeMarginRows(catalog, {}, read.rollups, own, *o.costs);
            result.margin.insert(result.margin.end(), std::make_move_iterator(rows.begin()),
                                 std::make_move_iterator(rows.end()));
        }
        result.problems.insert(result.problems.end(), decision.problems.begin(), decision.problems.end());

        tx.exec_params0("DELETE FROM invoices WHERE status = 'draft' AND period_id = $1 AND customer_id = ANY($2::text[])",
                        o.period_id, chunk);
        std::vector<billing::InvoiceDocument> docs;
        for (const billing::Draft& draft : decision.drafts) docs.push_back(billing::FromInvoice(draft.invoice, draft.period_id));
        std::vector<int64_t> ids;
        if (!decision.drafts.empty()) {
            for (const auto& r : tx.exec_params("SELECT nextval('invoices_invoice_id_seq') FROM generate_series(1, $1)",
                                                static_cast<int64_t>(decision.drafts.size()))) {
                ids.push_back(r[0].as<int64_t>());
            }
        }
        {
            CopyRows rows(tx, "invoices",
                          {"invoice_id", "status", "issuer", "customer_id", "customer_name", "plan", "period",
                           "period_id", "period_start", "period_end", "time_zone", "currency", "rounding", "round_at",
                           "plan_versions", "calls", "exact_subtotal", "subtotal", "tax_percent", "tax", "total",
                           "grants", "amount_due", "error", "run_id", "cutoff", "grace_until"});
            for (size_t i = 0; i < decision.drafts.size(); ++i) {
                const billing::Draft& draft = decision.drafts[i];
                const Invoice& inv = draft.invoice;
                const billing::InvoiceDocument& doc = docs[i];
                rows.Int(ids[i]).Text("draft").Text(issuers.For(inv.plan)).Text(doc.customer).Text(doc.customer_name);
                rows.Text(doc.plan).Text(doc.period).Int(doc.period_id).Text(doc.period_start).Text(doc.period_end);
                rows.Text(doc.time_zone).Text(doc.currency.empty() ? "XXX" : doc.currency).Text(doc.rounding);
                rows.Text(doc.round_at).Text(PgArray(doc.plan_versions)).Int(doc.calls);
                rows.Text(doc.exact_subtotal).Text(doc.subtotal).Text(doc.tax_percent).Text(doc.tax).Text(doc.total);
                rows.Text(GrantsJson(doc)).Text(doc.amount_due).Text(doc.error).Int(result.run_id);
                if (result.cutoff.empty()) {
                    rows.Null();
                } else {
                    rows.Text(result.cutoff);
                }
                rows.Text(FormatRfc3339(inv.period_end + inv.finalize_grace));
                rows.EndRow();
                ++result.drafts;
                if (!inv.error.empty()) ++result.not_priced;
            }
            rows.Complete();
        }
        CopyRows lines(tx, "invoice_lines",
                       {"invoice_id", "line_no", "kind", "description", "plan_version", "model", "unit", "band",
                        "output_condition", "time_window", "batch", "thinking", "tier", "quantity", "rate", "rate_per",
                        "amount", "amount_rounded", "first_hour", "last_hour", "adjusts_period", "adjusts_invoice",
                        "basis_calls", "basis_subtotal"});
        for (size_t i = 0; i < decision.drafts.size(); ++i) {
            const billing::Draft& draft = decision.drafts[i];
            const billing::InvoiceDocument& doc = docs[i];
            size_t adjustment = 0;
            for (const billing::DocumentLine& l : doc.lines) {
                lines.Int(ids[i]).Int(l.line_no).Text(l.kind).Text(l.description).Text(l.plan_version).Text(l.model);
                lines.Text(l.unit).Text(l.band).Text(l.output_condition).Text(l.window).Text(l.batch ? "t" : "f");
                lines.Text(l.thinking ? "t" : "f").Text(l.tier);
                if (l.quantity) {
                    lines.Int(*l.quantity);
                } else {
                    lines.Null();
                }
                if (l.rate.empty()) {
                    lines.Null().Null();
                } else {
                    lines.Text(l.rate).Int(l.rate_per);
                }
                lines.Text(l.amount).Text(l.amount_rounded);
                if (l.first_hour.empty()) {
                    lines.Null().Null();
                } else {
                    lines.Text(l.first_hour).Text(l.last_hour);
                }
                if (l.kind == "adjustment") {
                    TALLY_ASSERT(adjustment < draft.adjustments.size());
                    const billing::AdjustmentSource& src = draft.adjustments[adjustment++];
                    lines.Text(src.period).Text(src.invoice_number).Int(src.calls);
                    lines.Text(src.priced_now.ToString());
                    ++result.adjustments;
                } else {
                    lines.Null().Null().Null().Null();
                }
                lines.EndRow();
            }
            TALLY_ASSERT(adjustment == draft.adjustments.size());
        }
        lines.Complete();
        const auto t3 = std::chrono::steady_clock::now();
        result.read_ms += std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count();
        result.price_ms += std::chrono::duration_cast<std::chrono::milliseconds>(t2 - t1).count();
        result.write_ms += std::chrono::duration_cast<std::chrono::milliseconds>(t3 - t2).count();
        result.rollup_rows += chunk_read.rows;
        if (o.progress) o.progress(static_cast<int64_t>(end), result.customers);
    }
    tx.exec_params0("UPDATE invoice_runs SET finished_at = clock_timestamp(), drafts = $2, not_priced = $3, "
                    "adjustments = $4, left_finalized = $5 WHERE run_id = $1",
                    result.run_id, result.drafts, result.not_priced, result.adjustments, result.left_finalized);
    tx.commit();
    return result;
}

namespace {

// Finalizes the drafts `ids` (in that order) in the caller's transaction:
// each issuer and year takes a block of consecutive numbers from its counter
// (gapless: the block is the transaction's), then one statement freezes them.
std::vector<FinalizeResult> FinalizeMany(pqxx::transaction_base& tx, const std::vector<int64_t>& ids) {
    std::vector<FinalizeResult> out;
    if (ids.empty()) return out;
    std::vector<std::string> id_texts;
    for (int64_t id : ids) id_texts.push_back(std::to_string(id));
    const std::string id_array = PgArray(id_texts);
    tx.exec_params("SELECT 1 FROM invoices WHERE invoice_id = ANY($1::bigint[]) ORDER BY invoice_id FOR UPDATE", id_array);
    std::vector<billing::InvoiceDocument> loaded = LoadWhere(tx, "invoice_id = ANY($1::bigint[])", id_array);
    std::map<int64_t, billing::InvoiceDocument*> by_id;
    for (auto& d : loaded) by_id[d.invoice_id] = &d;
    const int64_t now_ms = tx.exec1("SELECT " + Ms("date_trunc('milliseconds', now())"))[0].as<int64_t>();
    const Instant now{std::chrono::milliseconds(now_ms)};
    std::map<std::string, std::string> prefixes;
    for (const auto& r : tx.exec("SELECT issuer, invoice_prefix FROM issuers")) {
        prefixes[r[0].as<std::string>()] = r[1].as<std::string>();
    }
    // (issuer, year) -> the invoices taking its numbers, in the order given.
    std::map<std::pair<std::string, int>, std::vector<billing::InvoiceDocument*>> blocks;
    for (int64_t id : ids) {
        auto it = by_id.find(id);
        if (it == by_id.end()) throw LedgerError("no invoice " + std::to_string(id));
        billing::InvoiceDocument& doc = *it->second;
        if (doc.status != "draft") throw LedgerError("invoice " + doc.number + " is " + doc.status + " already");
        if (!doc.error.empty()) {
            throw LedgerError("draft " + std::to_string(id) + " of " + doc.customer + " " + doc.period +
                              " could not be priced and cannot be finalized: " + doc.error);
        }
        const std::optional<Instant> period_end = ParseRfc3339(doc.period_end);
        TALLY_ASSERT(period_end.has_value());
        if (*period_end > now) {
            throw LedgerError("draft " + std::to_string(id) + " of " + doc.customer + " is for " + doc.period +
                              ", which has not ended (it ends " + doc.period_end + "): usage may still come");
        }
        const date::time_zone* zone = date::locate_zone(doc.time_zone);
        const auto local_day = date::floor<date::days>(zone->to_local(now));
        const int year = static_cast<int>(date::year_month_day(date::local_days(local_day)).year());
        blocks[{doc.issuer, year}].push_back(&doc);
    }
    std::vector<std::string> numbers, hashes, updated;
    for (auto& [key, docs] : blocks) {
        const auto& [issuer, year] = key;
        const int64_t n = static_cast<int64_t>(docs.size());
        const int64_t last =
            tx.exec_params1("INSERT INTO document_counters (issuer, year, kind, last_number) VALUES ($1, $2, 'invoice', $3) "
                            "ON CONFLICT (issuer, year, kind) DO UPDATE SET last_number = document_counters.last_number + $3 "
                            "RETURNING last_number",
                            issuer, year, n)[0]
                .as<int64_t>();
        TALLY_ASSERT(last >= n);
        for (int64_t i = 0; i < n; ++i) {
            billing::InvoiceDocument& doc = *docs[static_cast<size_t>(i)];
            doc.number = fmt::format("{}-{}-{:06d}", prefixes.at(issuer), year, last - n + 1 + i);
            doc.finalized_at = FormatRfc3339(now);
            doc.status = "finalized";
            doc.sha256 = billing::Sha256Hex(billing::CanonicalJson(doc));
            updated.push_back(std::to_string(doc.invoice_id));
            numbers.push_back(doc.number);
            hashes.push_back(doc.sha256);
        }
    }
    tx.exec_params0("UPDATE invoices SET status = 'finalized', number = u.number, "
                    "finalized_at = timestamptz 'epoch' + $4 * interval '1 millisecond', sha256 = u.sha256, "
                    "issuer_details = " + IssuerDetails("invoices.issuer") + " "
                    "FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u (id, number, sha256) "
                    "WHERE invoice_id = u.id",
                    PgArray(updated), PgArray(numbers), PgArray(hashes), now_ms);
    for (int64_t id : ids) {
        const billing::InvoiceDocument& doc = *by_id.at(id);
        out.push_back({id, doc.number, doc.customer, doc.period, doc.total, doc.currency, doc.sha256});
    }
    return out;
}

}  // namespace

namespace {

void AuditFinalized(pqxx::work& tx, const AuditActor* by, const std::vector<FinalizeResult>& done) {
    if (by == nullptr) return;
    for (const FinalizeResult& r : done) {
        InsertAudit(tx, by->actor, by->role, "invoice.finalize", r.number,
                    "{\"invoice_id\":" + std::to_string(r.invoice_id) + ",\"customer\":" + billing::JsonQuote(r.customer) +
                        ",\"period\":" + billing::JsonQuote(r.period) + ",\"total\":" + billing::JsonQuote(r.total) +
                        ",\"currency\":" + billing::JsonQuote(r.currency) + "}");
    }
}

void AuditCreditNote(pqxx::work& tx, const AuditActor* by, const std::string& action, const std::string& target,
                     const billing::CreditNoteDocument& cn) {
    if (by == nullptr) return;
    using billing::JsonQuote;
    InsertAudit(tx, by->actor, by->role, action, target,
                "{\"invoice\":" + JsonQuote(cn.invoice_number) + ",\"credit_note\":" + JsonQuote(cn.number) +
                    ",\"kind\":" + JsonQuote(cn.kind) + ",\"subtotal\":" + JsonQuote(cn.subtotal) +
                    ",\"tax\":" + JsonQuote(cn.tax) + ",\"total\":" + JsonQuote(cn.total) +
                    ",\"currency\":" + JsonQuote(cn.currency) + ",\"reason\":" + JsonQuote(cn.reason) + "}");
}

}  // namespace

std::vector<FinalizeResult> InvoiceStore::FinalizeIds(const std::vector<int64_t>& invoice_ids, const AuditActor* by) {
    pqxx::work tx(*impl_->conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kInvoiceLock);
    std::vector<FinalizeResult> out = FinalizeMany(tx, invoice_ids);
    AuditFinalized(tx, by, out);
    tx.commit();
    return out;
}

std::vector<FinalizeResult> InvoiceStore::FinalizePeriod(int32_t period_id, const std::string& customer,
                                                         std::vector<std::string>* not_priced, const AuditActor* by) {
    pqxx::work tx(*impl_->conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kInvoiceLock);
    std::vector<int64_t> ids;
    // Drafts that could not be priced stay drafts (and are named); the
    // others are finalized.
    for (const auto& r : tx.exec_params("SELECT invoice_id, error, customer_id, plan FROM invoices WHERE status = 'draft' "
                                        "AND period_id = $1 AND ($2 = '' OR customer_id = $2) ORDER BY customer_id, plan",
                                        period_id, customer)) {
        if (!r[1].as<std::string>().empty()) {
            if (not_priced != nullptr) {
                not_priced->push_back("draft " + r[0].as<std::string>() + " of " + r[2].as<std::string>() + " (" +
                                      r[3].as<std::string>() + ") could not be priced: " + r[1].as<std::string>());
            }
            continue;
        }
        ids.push_back(r[0].as<int64_t>());
    }
    std::vector<FinalizeResult> out = FinalizeMany(tx, ids);
    AuditFinalized(tx, by, out);
    tx.commit();
    return out;
}

std::vector<FinalizeResult> InvoiceStore::FinalizeDue(std::vector<std::string>* not_priced) {
    pqxx::work tx(*impl_->conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kInvoiceLock);
    if (not_priced != nullptr) {
        for (const auto& r : tx.exec("SELECT invoice_id, customer_id, period, error FROM invoices WHERE status = 'draft' "
                                     "AND error <> '' AND grace_until <= now() ORDER BY period_id, customer_id, plan")) {
            not_priced->push_back("draft " + r[0].as<std::string>() + " of " + r[1].as<std::string>() + " " +
                                  r[2].as<std::string>() + " could not be priced: " + r[3].as<std::string>());
        }
    }
    std::vector<int64_t> ids;
    for (const auto& r : tx.exec("SELECT invoice_id FROM invoices WHERE status = 'draft' AND error = '' "
                                 "AND grace_until <= now() ORDER BY period_id, customer_id, plan")) {
        ids.push_back(r[0].as<int64_t>());
    }
    std::vector<FinalizeResult> out = FinalizeMany(tx, ids);
    tx.commit();
    return out;
}

billing::InvoiceDocument InvoiceStore::Load(const std::string& id_or_number) {
    pqxx::work tx(*impl_->conn);
    billing::InvoiceDocument doc = LoadOne(tx, id_or_number, false);
    tx.commit();
    return doc;
}

std::vector<billing::InvoiceDocument> InvoiceStore::List(const ListFilter& f) {
    pqxx::work tx(*impl_->conn);
    std::vector<billing::InvoiceDocument> docs =
        LoadWhere(tx, "($1 < 0 OR period_id = $1) AND ($2 = '' OR customer_id = $2) AND ($3 = '' OR status = $3)",
                  f.period_id.value_or(-1), f.customer, f.status);
    tx.commit();
    return docs;
}

VerifyResult InvoiceStore::Verify(const std::string& id_or_number) {
    billing::InvoiceDocument doc = Load(id_or_number);
    if (doc.status == "draft") throw LedgerError("invoice " + id_or_number + " is a draft: it has no hash yet");
    return {doc.number, doc.sha256, billing::Sha256Hex(billing::CanonicalJson(doc))};
}

namespace {

billing::CreditNoteDocument IssueCreditNote(pqxx::transaction_base& tx, const billing::InvoiceDocument& inv,
                                            const std::string& kind, const std::string& subtotal_text,
                                            const std::string& reason) {
    if (inv.status != "finalized") {
        throw LedgerError("invoice " + (inv.number.empty() ? std::to_string(inv.invoice_id) : inv.number) + " is " +
                          inv.status + ": only a finalized invoice can be voided or credited");
    }
    if (reason.empty()) throw LedgerError("a credit note needs a reason");
    std::optional<Currency> currency = Currency::FromCode(inv.currency);
    std::optional<RoundingMode> mode = ParseRoundingMode(inv.rounding);
    TALLY_ASSERT(currency.has_value());
    TALLY_ASSERT(mode.has_value());
    const int digits = currency->minor_digits();
    const Amount invoice_subtotal(*currency, ParseStoredDecimal(inv.subtotal));
    const Amount invoice_tax(*currency, ParseStoredDecimal(inv.tax));
    pqxx::row done = tx.exec_params1(
        "SELECT COALESCE(sum(subtotal), 0)::text, COALESCE(sum(tax), 0)::text FROM credit_notes WHERE invoice_id = $1",
        inv.invoice_id);
    const Amount credited(*currency, ParseStoredDecimal(done[0].as<std::string>()));
    const Amount credited_tax(*currency, ParseStoredDecimal(done[1].as<std::string>()));
    const Amount left = invoice_subtotal - credited;
    Amount subtotal = left;
    Amount tax = invoice_tax - credited_tax;
    if (kind == "partial") {
        std::optional<Decimal> d = Decimal::Parse(subtotal_text);
        if (!d) throw LedgerError("credit amount '" + subtotal_text + "': " + Decimal::ParseError(subtotal_text));
        subtotal = Amount(*currency, *d);
        if (!(subtotal == subtotal.RoundToMinor(*mode))) {
            throw LedgerError("credit amount " + subtotal_text + " has more places than " + inv.currency + " allows");
        }
        if (subtotal.is_negative() || subtotal.is_zero()) throw LedgerError("a credit amount is more than zero");
        if (left < subtotal) {
            throw LedgerError("credit of " + subtotal.ToString(digits) + " " + inv.currency + " is more than the " +
                              left.ToString(digits) + " left uncredited on invoice " + inv.number);
        }
        // Tax on what is credited so far, rounded once, less the tax already
        // credited: partial notes in any number of pieces add up to the
        // invoice's tax exactly, and no piece takes more than its share.
        const Amount cumulative = ((credited + subtotal) * Percent(ParseStoredDecimal(inv.tax_percent))).RoundToMinor(*mode);
        tax = Amount::Max(Amount::Min(cumulative - credited_tax, invoice_tax - credited_tax), Amount::Zero(*currency));
    } else if (left.is_zero() && tax.is_zero()) {
        subtotal = Amount::Zero(*currency);
    }
    pqxx::row r = tx.exec_params1("SELECT i.credit_note_prefix, " + Ms("date_trunc('milliseconds', now())") +
                                      ", extract(year FROM now() AT TIME ZONE $2)::int FROM issuers i WHERE i.issuer = $1",
                                  inv.issuer, inv.time_zone);
    const int year = r[2].as<int>();
    billing::CreditNoteDocument cn;
    cn.number = fmt::format("{}-{}-{:06d}", r[0].as<std::string>(), year, NextNumber(tx, inv.issuer, year, "credit_note"));
    cn.issuer = inv.issuer;
    cn.invoice_number = inv.number;
    cn.customer = inv.customer;
    cn.customer_name = inv.customer_name;
    cn.currency = inv.currency;
    cn.kind = kind;
    cn.reason = reason;
    cn.subtotal = subtotal.ToString(digits);
    cn.tax = tax.ToString(digits);
    cn.total = (subtotal + tax).ToString(digits);
    cn.created_at = FormatRfc3339(Instant{std::chrono::milliseconds(r[1].as<int64_t>())});
    cn.sha256 = billing::Sha256Hex(billing::CanonicalJson(cn));
    cn.credit_note_id =
        tx.exec_params1("INSERT INTO credit_notes (number, issuer, invoice_id, customer_id, currency, kind, reason, "
                        "subtotal, tax, total, created_at, sha256, issuer_details) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                        "$8, $9, $10, timestamptz 'epoch' + $11 * interval '1 millisecond', $12, " +
                            IssuerDetails("$2") + ") "
                        "RETURNING credit_note_id",
                        cn.number, cn.issuer, inv.invoice_id, cn.customer, cn.currency, cn.kind, cn.reason, cn.subtotal,
                        cn.tax, cn.total, r[1].as<int64_t>(), cn.sha256)[0]
            .as<int64_t>();
    return cn;
}

}  // namespace

billing::CreditNoteDocument InvoiceStore::Void(const std::string& id_or_number, const std::string& reason,
                                               const AuditActor* by) {
    pqxx::work tx(*impl_->conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kInvoiceLock);
    billing::InvoiceDocument inv = LoadOne(tx, id_or_number, true);
    billing::CreditNoteDocument cn = IssueCreditNote(tx, inv, "void", "", reason);
    tx.exec_params0("UPDATE invoices SET status = 'void', voided_at = now(), void_reason = $2 WHERE invoice_id = $1",
                    inv.invoice_id, reason);
    AuditCreditNote(tx, by, "invoice.void", inv.number, cn);
    tx.commit();
    return cn;
}

billing::CreditNoteDocument InvoiceStore::Credit(const std::string& id_or_number, const std::string& subtotal,
                                                 const std::string& reason, const AuditActor* by) {
    pqxx::work tx(*impl_->conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kInvoiceLock);
    billing::InvoiceDocument inv = LoadOne(tx, id_or_number, true);
    billing::CreditNoteDocument cn = IssueCreditNote(tx, inv, "partial", subtotal, reason);
    AuditCreditNote(tx, by, "credit_note.create", cn.number, cn);
    tx.commit();
    return cn;
}

namespace {

// Credit notes with the number and customer name of the invoice each
// credits (the canonical form covers both), `where` over credit_notes c.
std::vector<billing::CreditNoteDocument> CreditNotesWhere(pqxx::transaction_base& tx, const std::string& where,
                                                          const std::string& param) {
    const std::string query =
        "SELECT c.credit_note_id, c.number, c.issuer, c.customer_id, c.currency, c.kind, c.reason, c.subtotal::text, "
        "c.tax::text, c.total::text, " + Ms("c.created_at") + ", c.sha256, i.number, i.customer_name "
        "FROM credit_notes c JOIN invoices i USING (invoice_id) WHERE " + where + " ORDER BY c.credit_note_id";
    std::vector<billing::CreditNoteDocument> out;
    for (const auto& r : tx.exec_params(query, param)) {
        billing::CreditNoteDocument cn;
        cn.credit_note_id = r[0].as<int64_t>();
        cn.number = r[1].as<std::string>();
        cn.issuer = r[2].as<std::string>();
        cn.customer = r[3].as<std::string>();
        cn.currency = r[4].as<std::string>();
        cn.kind = r[5].as<std::string>();
        cn.reason = r[6].as<std::string>();
        cn.subtotal = r[7].as<std::string>();
        cn.tax = r[8].as<std::string>();
        cn.total = r[9].as<std::string>();
        cn.created_at = MsText(r[10]);
        cn.sha256 = r[11].as<std::string>();
        cn.invoice_number = r[12].is_null() ? "" : r[12].as<std::string>();
        cn.customer_name = r[13].as<std::string>();
        out.push_back(std::move(cn));
    }
    return out;
}

}  // namespace

std::vector<billing::CreditNoteDocument> InvoiceStore::CreditNotes(const std::string& id_or_number) {
    pqxx::work tx(*impl_->conn);
    billing::InvoiceDocument inv = LoadOne(tx, id_or_number, false);
    std::vector<billing::CreditNoteDocument> out =
        CreditNotesWhere(tx, "c.invoice_id = $1::bigint", std::to_string(inv.invoice_id));
    tx.commit();
    return out;
}

std::optional<billing::CreditNoteDocument> InvoiceStore::FindCreditNote(const std::string& number) {
    pqxx::work tx(*impl_->conn);
    std::vector<billing::CreditNoteDocument> found = CreditNotesWhere(tx, "c.number = $1", number);
    tx.commit();
    if (found.empty()) return std::nullopt;
    return std::move(found.front());
}

}  // namespace tally::ledger

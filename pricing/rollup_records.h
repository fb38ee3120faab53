// The one conversion between rollups as the rater makes them (indices into a
// Catalog) and rollups as the ledger stores them (names), both ways. The
// consumer writes ToRecords of each batch; `tally usage` (and every later
// reader) prices FromRecords of what is stored; `tally rate` prices the
// rater's rollups directly. Equal events give equal invoices on both paths
// because these two functions are inverse (tests/unit/pricing/rollup_records_test.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pricing/plan.h"
#include "pricing/rater.h"

namespace tally {

// One stored row: a unit's quantity in one rate cell and hour, or (unit "")
// the number of calls in that cell and hour. Calls are stored once per cell,
// so calls with no unit in common still count, and a call with no quantity
// at all (zero tokens) still makes its invoice (a minimum commitment bills).
struct RollupRecord {
    std::string customer;
    int32_t period = 0;  // billing month id (MonthId) or 0 for an explicit period
    int32_t hour = 0;    // UTC hours since the epoch
    std::string plan, version, model;  // model: the model billed
    std::string served_model;          // the model that served routed calls, "" when not routed
    std::string project;               // as kept (pricing/project_cap.h): "", a name, or "other"
    int16_t band = 0, condition = -1, time_window = -1, flags = 0;  // -1: none
    std::string unit;      // "" for the calls record
    int64_t quantity = 0;  // 0 on the calls record
    int64_t calls = 0;     // 0 on unit records
};

inline constexpr const char* kCallsUnit = "";

// Records of rollups (any order; each rollup gives its calls record and one
// record per unit with a quantity). Records come out in the rollups' order.
std::vector<RollupRecord> ToRecords(const Catalog& catalog, const std::vector<Rollup>& rollups);

struct RecordsRead {
    std::vector<Rollup> rollups;  // canonical (CanonicalizeRollups)
    int64_t unresolved = 0;       // records naming a plan, version, model or unit the catalog lacks
};

// Rollups of stored records, summed per cell (saturating, as the ledger's
// fold does: a sum at kQuantitySaturated marks an overflow).
RecordsRead FromRecords(const Catalog& catalog, const std::vector<RollupRecord>& records);

// A stored row as views, valid only while it is added: what a reader that
// parses rows as they arrive has at hand (no RollupRecord made per row).
struct RecordView {
    std::string_view customer;
    int32_t period = 0;
    int32_t hour = 0;
    std::string_view plan, version, model, served_model, project;
    int16_t band = 0, condition = -1, time_window = -1, flags = 0;
    std::string_view unit;  // "" for the calls record
    int64_t quantity = 0;
    int64_t calls = 0;
};

// FromRecords one record at a time: Add every record, then Finish gives
// what FromRecords of the same records in the same order gives (FromRecords
// is this). The catalog must outlive the folder.
class RecordsFolder {
   public:
    explicit RecordsFolder(const Catalog& catalog);
    ~RecordsFolder();
    RecordsFolder(const RecordsFolder&) = delete;
    RecordsFolder& operator=(const RecordsFolder&) = delete;

    void Add(const RecordView& record);
    // Add of a record whose fields other than unit, quantity and calls
    // equal those of the record added just before (which a reader can tell
    // from the row's text alone). REQUIRES: a record was added since the
    // last Finish.
    void AddSameCell(std::string_view unit, int64_t quantity, int64_t calls);
    // The rollups so far, canonical; the folder starts again empty.
    RecordsRead Finish();

   private:
    struct Cells;
    void AddUnit(bool same_fields, std::string_view unit, int64_t quantity, int64_t calls);
    const Catalog& catalog_;
    std::unique_ptr<Cells> cells_;
    int64_t unresolved_ = 0;
};

}  // namespace tally

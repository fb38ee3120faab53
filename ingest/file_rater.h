// `tally rate`'s pipeline: lines of event files through the consumer's own
// BatchAssembler and Resolve, with an in-memory set of billed calls where
// the consumer has the ledger. The same validation, the same reasons, the
// same dedup key and the same duplicate/conflict rule, so `tally rate` and
// the ledger agree on the same events. No I/O: the caller reads the files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ingest/batch_assembler.h"

namespace tally::ingest {

struct LineRef {
    int32_t file = 0;  // index of the file in the caller's list
    int64_t line = 0;  // 1-based
};

struct RejectedAt {
    LineRef at;
    RejectReason code = RejectReason::kInvalid;
    std::string reason;
};

struct DuplicateAt {
    LineRef at;
    LineRef first;  // the line whose call was billed
};

class FileRater {
   public:
    // `snapshot` must outlive the FileRater.
    FileRater(const CatalogSnapshot& snapshot, const std::string& default_plan, AssemblerOptions options);

    // One line (not blank). Lines are assembled in batches of kChunkLines:
    // bounded memory for files of any size.
    void Add(int32_t file, int64_t line, std::string text);

    struct Result {
        std::vector<Rollup> rollups;  // canonical, of the billed calls
        std::vector<RejectedAt> rejected;
        std::vector<DuplicateAt> duplicates;
        int64_t rated = 0, outside_period = 0, other_customers = 0;
    };
    // Rates what is left and returns everything, rejected and duplicate
    // lines in (file, line) order.
    Result Finish();

    static constexpr size_t kChunkLines = 65536;

   private:
    void Flush();

    bool projects_as_named_ = false;  // AssemblerOptions::projects_as_named
    BatchAssembler assembler_;
    std::unordered_map<Fingerprint, LineRef, FingerprintHash> billed_at_;
    std::unordered_map<Fingerprint, Fingerprint, FingerprintHash> billed_hash_;
    struct Line {
        LineRef at;
        std::string text;
    };
    std::vector<Line> lines_;
    Result result_;
};

}  // namespace tally::ingest

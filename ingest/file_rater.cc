#include "ingest/file_rater.h"

#include <algorithm>
#include <tuple>

#include "base/assert.h"

namespace tally::ingest {

FileRater::FileRater(const CatalogSnapshot& snapshot, const std::string& default_plan, AssemblerOptions options)
    : projects_as_named_(options.projects_as_named), assembler_(snapshot, default_plan, std::move(options)) {
    lines_.reserve(kChunkLines);
}

void FileRater::Add(int32_t file, int64_t line, std::string text) {
    lines_.push_back({{file, line}, std::move(text)});
    if (lines_.size() == kChunkLines) Flush();
}

void FileRater::Flush() {
    std::vector<Message> messages;
    messages.reserve(lines_.size());
    for (const Line& l : lines_) messages.push_back({l.at.file, l.at.line, l.text});
    const AssembledBatch ab = assembler_.Assemble(messages);
    std::vector<std::optional<Fingerprint>> stored(ab.batch.keys.size());
    for (size_t i = 0; i < ab.batch.keys.size(); ++i) {
        auto it = billed_hash_.find(ab.batch.keys[i].key);
        if (it != billed_hash_.end()) stored[i] = it->second;
    }
    const Resolution r = Resolve(ab.batch, stored);
    for (size_t i = 0; i < ab.batch.keys.size(); ++i) {
        if (r.outcomes[i] != KeyOutcome::kNew) continue;
        const KeyRow& k = ab.batch.keys[i];
        assembler_.rater().AddParts(ab.parts[i], 1, ab.projects[i]);
        billed_hash_.emplace(k.key, k.payload_hash);
        billed_at_.emplace(k.key, LineRef{k.partition, k.offset});
        ++result_.rated;
    }
    for (const Duplicate& d : r.duplicates) {
        result_.duplicates.push_back({{d.partition, d.offset}, billed_at_.at(ab.batch.keys[d.key].key)});
    }
    for (const std::vector<DeadLetter>* list : {&ab.batch.dead_letters, &r.conflicts}) {
        for (const DeadLetter& d : *list) result_.rejected.push_back({{d.partition, d.offset}, d.reason, d.detail});
    }
    result_.outside_period += ab.outside_period;
    result_.other_customers += ab.other_customers;
    lines_.clear();
}

FileRater::Result FileRater::Finish() {
    Flush();
    auto place = [](const LineRef& a) { return std::tie(a.file, a.line); };
    std::sort(result_.rejected.begin(), result_.rejected.end(),
              [&](const RejectedAt& a, const RejectedAt& b) { return place(a.at) < place(b.at); });
    std::sort(result_.duplicates.begin(), result_.duplicates.end(),
              [&](const DuplicateAt& a, const DuplicateAt& b) { return place(a.at) < place(b.at); });
    result_.rollups = assembler_.rater().Rollups(projects_as_named_ ? Rater::Projects::kAsNamed : Rater::Projects::kCapped);
    TALLY_ASSERT(result_.rated == static_cast<int64_t>(billed_hash_.size()));
    return std::move(result_);
}

}  // namespace tally::ingest

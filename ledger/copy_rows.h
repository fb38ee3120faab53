// Rows for COPY ... FROM STDIN in text format, escaped here with a table
// lookup per byte and copied in runs: the raw messages of the archive are
// most of the bytes a batch sends, and pqxx::stream_to escapes them one
// character at a time. Internal to ledger/.
#pragma once

#include <cstdint>
#include <memory>
#include <pqxx/pqxx>
#include <pqxx/tablewriter>
#include <string>
#include <string_view>
#include <vector>

namespace tally::ledger {

class CopyRows {
   public:
    CopyRows(pqxx::transaction_base& tx, const std::string& table, const std::vector<std::string>& columns);
    ~CopyRows();
    CopyRows(const CopyRows&) = delete;
    CopyRows& operator=(const CopyRows&) = delete;

    CopyRows& Text(std::string_view value);  // any bytes but NUL
    CopyRows& Int(int64_t value);
    CopyRows& Null();  // SQL NULL (\N)
    void EndRow();
    void Complete();  // before the transaction goes on

   private:
    void Separate();
    std::unique_ptr<pqxx::tablewriter> writer_;
    std::string line_;
    bool first_ = true;
};

}  // namespace tally::ledger

// Rows for COPY ... FROM STDIN in text format, escaped here with a table
// lookup per byte and copied in runs: the raw messages of the archive are
// most of the bytes a batch sends, and pqxx::stream_to escapes them one
// character at a time. Rows are sent in batches of about 64 KiB (an invoice
// run sends hundreds of thousands of short lines), so a row may reach the
// server only at a later EndRow or at Complete. Internal to ledger/.
#pragma once

#include <cstddef>
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
    void Complete();  // sends what is left and ends the COPY; before the transaction goes on

   private:
    void Separate();
    void Send();
    std::unique_ptr<pqxx::tablewriter> writer_;
    std::string line_;  // the rows not sent yet, each but the last ended by '\n'
    size_t rows_pending_ = 0;
    bool first_ = true;
};

}  // namespace tally::ledger

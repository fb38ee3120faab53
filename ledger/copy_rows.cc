#include "ledger/copy_rows.h"

#include <array>
#include <charconv>
#include <system_error>

#include "base/assert.h"

namespace tally::ledger {

namespace {

// COPY's text format escapes the backslash, and the bytes that would end a
// field or a row.
constexpr std::array<char, 256> EscapeTable() {
    std::array<char, 256> t{};
    t[static_cast<unsigned char>('\\')] = '\\';
    t[static_cast<unsigned char>('\t')] = 't';
    t[static_cast<unsigned char>('\n')] = 'n';
    t[static_cast<unsigned char>('\r')] = 'r';
    return t;
}
constexpr std::array<char, 256> kEscape = EscapeTable();

// Rows go to the connection in batches of about this many bytes: one
// write_raw_line (a copy of the text and a PQputCopyData) per batch rather
// than per row. COPY's data is a byte stream: rows need not match messages.
constexpr size_t kBatchBytesMin = 64 * 1024;

}  // namespace

// tablewriter is deprecated in libpqxx 6.4 for stream_to, whose raw line
// writer is private; it is the public way to send pre-formatted rows.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
CopyRows::CopyRows(pqxx::transaction_base& tx, const std::string& table, const std::vector<std::string>& columns)
    : writer_(std::make_unique<pqxx::tablewriter>(tx, table, columns.begin(), columns.end())) {}
#pragma GCC diagnostic pop

CopyRows::~CopyRows() = default;

void CopyRows::Separate() {
    if (!first_) line_ += '\t';
    first_ = false;
}

CopyRows& CopyRows::Text(std::string_view value) {
    Separate();
    size_t run = 0;
    for (size_t i = 0; i < value.size(); ++i) {
        const char e = kEscape[static_cast<unsigned char>(value[i])];
        if (e == 0) continue;
        line_.append(value.data() + run, i - run);
        line_ += '\\';
        line_ += e;
        run = i + 1;
    }
    line_.append(value.data() + run, value.size() - run);
    return *this;
}

CopyRows& CopyRows::Int(int64_t value) {
    Separate();
    char text[24];
    const auto [end, ec] = std::to_chars(text, text + sizeof text, value);
    TALLY_ASSERT(ec == std::errc());
    line_.append(text, end);
    return *this;
}

CopyRows& CopyRows::Null() {
    Separate();
    line_ += "\\N";
    return *this;
}

void CopyRows::EndRow() {
    TALLY_ASSERT(!first_);  // a row has at least one field
    first_ = true;
    ++rows_pending_;
    if (line_.size() >= kBatchBytesMin) {
        Send();
    } else {
        line_ += '\n';
    }
}

// write_raw_line ends the batch's last row; the rows before it end in '\n'.
void CopyRows::Send() {
    if (rows_pending_ == 0) return;
    writer_->write_raw_line(line_);
    line_.clear();
    rows_pending_ = 0;
}

void CopyRows::Complete() {
    TALLY_ASSERT(first_);  // not in the middle of a row
    if (rows_pending_ > 0) {
        TALLY_ASSERT(!line_.empty());
        TALLY_ASSERT(line_.back() == '\n');
        line_.pop_back();
        Send();
    }
    writer_->complete();
}

}  // namespace tally::ledger

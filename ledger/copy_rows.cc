#include "ledger/copy_rows.h"

#include <array>

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
    line_ += std::to_string(value);
    return *this;
}

CopyRows& CopyRows::Null() {
    Separate();
    line_ += "\\N";
    return *this;
}

void CopyRows::EndRow() {
    writer_->write_raw_line(line_);
    line_.clear();
    first_ = true;
}

void CopyRows::Complete() {
    writer_->complete();
}

}  // namespace tally::ledger

// The stored form of an invoice: its canonical JSON (what the SHA-256
// covers), JSON and CSV escaping, and the hash itself.
#include "billing/invoice_document.h"

#include <gtest/gtest.h>

#include "billing/invoice_run.h"

namespace tally::billing {
namespace {

InvoiceDocument Sample() {
    InvoiceDocument d;
    d.invoice_id = 7;
    d.status = "finalized";
    d.number = "INV-2025-000001";
    d.issuer = "acme";
    d.customer = "c1";
    d.customer_name = "北京\"引号\"公司,\n第二行";
    d.plan = "p";
    d.period = "2025-11";
    d.currency = "CNY";
    d.subtotal = "1.00";
    d.total = "1.06";
    DocumentLine l;
    l.line_no = 1;
    l.kind = "usage";
    l.model = "m";
    l.unit = "input";
    l.quantity = 500000;
    l.rate = "2";
    l.rate_per = 1000000;
    l.amount = "1";
    l.amount_rounded = "1.00";
    d.lines.push_back(l);
    d.sha256 = "x";
    return d;
}

TEST(InvoiceDocument, Sha256OfKnownVectors) {
    EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(InvoiceDocument, CanonicalFormCoversWhatFinanceReliesOnAndNothingThatMayChange) {
    const InvoiceDocument d = Sample();
    const std::string base = CanonicalJson(d);
    // Every field finance relies on changes the canonical form...
    for (auto change : std::vector<std::function<void(InvoiceDocument&)>>{
             [](InvoiceDocument& x) { x.number = "INV-2025-000002"; },
             [](InvoiceDocument& x) { x.customer_name += " "; },
             [](InvoiceDocument& x) { x.total = "1.07"; },
             [](InvoiceDocument& x) { x.lines[0].amount_rounded = "1.01"; },
             [](InvoiceDocument& x) { x.lines[0].quantity = 500001; },
             [](InvoiceDocument& x) { x.lines[0].quantity.reset(); },
             [](InvoiceDocument& x) { x.lines.push_back(x.lines[0]); },
             [](InvoiceDocument& x) { x.finalized_at = "2025-12-02T00:00:00Z"; },
         }) {
        InvoiceDocument x = d;
        change(x);
        EXPECT_NE(CanonicalJson(x), base);
    }
    // ...and voiding it, or its id and hash, do not.
    InvoiceDocument v = d;
    v.status = "void";
    v.voided_at = "2025-12-03T00:00:00Z";
    v.void_reason = "wrong";
    v.sha256 = "other";
    v.invoice_id = 8;
    EXPECT_EQ(CanonicalJson(v), base);
    EXPECT_EQ(base.find('\n'), std::string::npos) << "control characters are escaped";
    EXPECT_NE(base.find("\\\"引号\\\""), std::string::npos) << base;
}

TEST(InvoiceDocument, JsonQuoteEscapesControlCharactersAndKeepsUtf8) {
    EXPECT_EQ(JsonQuote(std::string("a\"b\\c\n\t\x01\0d", 10)), "\"a\\\"b\\\\c\\n\\t\\u0001\\u0000d\"");
    EXPECT_EQ(JsonQuote("月之暗面"), "\"月之暗面\"");
}

TEST(InvoiceDocument, CsvQuotesFieldsWithCommasQuotesAndNewlines) {
    const std::string csv = ExportCsv({Sample()});
    const size_t header_end = csv.find("\r\n");
    ASSERT_NE(header_end, std::string::npos);
    const std::string row = csv.substr(header_end + 2);
    EXPECT_EQ(row.rfind("INV-2025-000001,finalized,acme,c1,\"北京\"\"引号\"\"公司,\n第二行\",p,2025-11,CNY,1,usage,", 0), 0u)
        << row;
    EXPECT_NE(row.find(",500000,2,1000000,1,1.00,"), std::string::npos) << row;
}

// A name a spreadsheet would run as a formula shows as text ('=...); a
// negative amount stays a number.
TEST(InvoiceDocument, CsvKeepsFormulasFromRunningAndNumbersAsNumbers) {
    InvoiceDocument d = Sample();
    d.customer_name = "=HYPERLINK(\"http://evil/\",\"x\")";
    d.lines[0].amount_rounded = "-1.00";
    std::string row = ExportCsv({d});
    row = row.substr(row.find("\r\n") + 2);
    EXPECT_EQ(row.rfind("INV-2025-000001,finalized,acme,c1,\"'=HYPERLINK(\"\"http://evil/\"\",\"\"x\"\")\",p,", 0), 0u)
        << row;
    EXPECT_NE(row.find(",-1.00,"), std::string::npos) << row;
    for (const char* formula : {"+1+1", "-2+3", "@SUM(A1)", "\tx", "-"}) {
        d.customer_name = formula;
        row = ExportCsv({d});
        row = row.substr(row.find("\r\n") + 2);
        EXPECT_NE(row.find(",\"'" + std::string(formula) + "\","), std::string::npos) << formula << ": " << row;
    }
}

TEST(InvoiceRun, PeriodLabelsRoundTrip) {
    EXPECT_EQ(PeriodIdOf("2025-11"), MonthId(2025, 11));
    EXPECT_EQ(PeriodLabel(MonthId(2025, 1)), "2025-01");
    for (const char* bad : {"2025-13", "2025-00", "2025-1", "25-11", "2025/11", "１２３４-11", "", "1969-12"}) {
        EXPECT_FALSE(PeriodIdOf(bad).has_value()) << bad;
    }
}

}  // namespace
}  // namespace tally::billing

#include "documents/invoice_export.h"

#include <cairo.h>
#include <gtest/gtest.h>
#include <pango/pangocairo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "pricing/decimal.h"

// The exported documents as built (fields of the renderer's input, CSV and
// JSON text) and a credit note rendered to PDF and read back with pdftotext
// (Debian package poppler-utils; the rendering test is skipped without it).

namespace tally::documents {
namespace {

// As in tests/unit/render: the leaks LeakSanitizer sees in fontconfig and
// cairo's PDF writer are the libraries' own, and at exit cairo and pango
// drop their caches so that only the renderer's own leaks would show.
extern "C" const char* __lsan_default_suppressions() {
    return "leak:libfontconfig.so.1\nleak:libcairo.so.2\n";
}

class ReleaseLibraryCaches : public testing::Environment {
   public:
    void TearDown() override {
        pango_cairo_font_map_set_default(nullptr);
        cairo_debug_reset_static_data();
    }
};
const testing::Environment* const kReleaseLibraryCaches = testing::AddGlobalTestEnvironment(new ReleaseLibraryCaches);

constexpr const char* kCustomerName = "华东智能科技有限公司";

billing::DocumentLine Line(int32_t no, const std::string& kind, const std::string& amount) {
    billing::DocumentLine l;
    l.line_no = no;
    l.kind = kind;
    l.amount = amount;
    l.amount_rounded = amount;
    return l;
}

// A finalized November invoice: a usage line, a discount and the rounding
// line that makes the rounded lines add up to the subtotal (120.00).
billing::InvoiceDocument Invoice() {
    billing::InvoiceDocument d;
    d.invoice_id = 7;
    d.status = "finalized";
    d.number = "INV-2026-000003";
    d.issuer = "demo";
    d.customer = "cust_volc_a";
    d.customer_name = kCustomerName;
    d.plan = "doubao-seed-1.6";
    d.period = "2025-11";
    d.period_start = "2025-10-31T16:00:00.000Z";
    d.period_end = "2025-11-30T16:00:00.000Z";
    d.time_zone = "Asia/Shanghai";
    d.currency = "CNY";
    d.rounding = "half_even";
    d.round_at = "invoice";
    d.calls = 1234;
    d.exact_subtotal = "119.996";
    d.subtotal = "120.00";
    d.tax_percent = "6";
    d.tax = "7.20";
    d.total = "127.20";
    d.amount_due = "127.20";
    d.finalized_at = "2026-01-02T03:04:05.000Z";
    d.sha256 = std::string(64, 'a');
    billing::DocumentLine usage = Line(1, "usage", "133.326");
    usage.amount_rounded = "133.33";
    usage.model = "doubao-seed-1.6";
    usage.unit = "input_tokens";
    usage.band = "0-32000";
    usage.plan_version = "2025-06";
    usage.quantity = 166657500;
    usage.rate = "0.80";
    usage.rate_per = 1000000;
    billing::DocumentLine discount = Line(2, "discount", "-13.33");
    discount.description = "Contract discount 10%";
    billing::DocumentLine rounding = Line(3, "rounding", "0.00");
    rounding.description = "Rounding";
    d.lines = {usage, discount, rounding};
    return d;
}

billing::CreditNoteDocument Note(const std::string& kind, const std::string& subtotal, const std::string& tax,
                                 const std::string& total) {
    billing::CreditNoteDocument cn;
    cn.credit_note_id = 2;
    cn.number = "CN-2026-000002";
    cn.issuer = "demo";
    cn.invoice_number = "INV-2026-000003";
    cn.customer = "cust_volc_a";
    cn.customer_name = kCustomerName;
    cn.currency = "CNY";
    cn.kind = kind;
    cn.reason = "billing address was wrong";
    cn.subtotal = subtotal;
    cn.tax = tax;
    cn.total = total;
    cn.created_at = "2026-01-15T08:00:00.000Z";
    cn.sha256 = std::string(64, 'c');
    return cn;
}

ledger::Issuer Issuer() {
    ledger::Issuer is;
    is.issuer = "demo";
    is.name = "示例云计算有限公司";
    is.address = "北京市海淀区";
    is.tax_id = "91110000";
    is.email = "billing@example.cn";
    return is;
}

Decimal Dec(const std::string& text) {
    std::optional<Decimal> d = Decimal::Parse(text);
    EXPECT_TRUE(d.has_value()) << text;
    return d.value_or(Decimal());
}

Decimal SumOfLines(const render::PdfDocument& pdf) {
    Decimal sum;
    for (const auto& l : pdf.lines) sum += Dec(l.amount);
    return sum;
}

TEST(Grouped, GroupsThousandsAndKeepsTheSign) {
    EXPECT_EQ(Grouped(0), "0");
    EXPECT_EQ(Grouped(999), "999");
    EXPECT_EQ(Grouped(1000), "1,000");
    EXPECT_EQ(Grouped(-1234567), "-1,234,567");
    EXPECT_EQ(Grouped(std::numeric_limits<int64_t>::min()), "-9,223,372,036,854,775,808");
}

TEST(PdfOf, AnInvoiceHasItsNumberLinesTotalsAndPeriodInItsZone) {
    const render::PdfDocument pdf = PdfOf(Invoice(), Issuer());
    EXPECT_EQ(pdf.title, "Invoice");
    EXPECT_EQ(pdf.number, "INV-2026-000003");
    EXPECT_EQ(pdf.status, "finalized");
    EXPECT_EQ(pdf.issue_date, "2026-01-02");
    EXPECT_EQ(pdf.period, "2025-11 (2025-11-01 to 2025-11-30, Asia/Shanghai)");
    EXPECT_EQ(pdf.reference, "");
    EXPECT_EQ(pdf.issuer.name, "示例云计算有限公司");
    EXPECT_EQ(pdf.customer.name, kCustomerName);
    EXPECT_EQ(pdf.customer.address, "Customer ID cust_volc_a");
    ASSERT_EQ(pdf.lines.size(), 3U);
    EXPECT_EQ(pdf.lines[0].description, "doubao-seed-1.6 · input_tokens · 0-32000 · 2025-06");
    EXPECT_EQ(pdf.lines[0].quantity, "166,657,500 input_tokens");
    EXPECT_EQ(pdf.lines[0].unit_price, "0.80 / 1M");
    EXPECT_EQ(pdf.lines[0].amount, "133.33");
    EXPECT_EQ(pdf.lines[1].description, "Contract discount 10%");
    ASSERT_EQ(pdf.totals.size(), 3U);
    EXPECT_EQ(pdf.totals[0].amount, "120.00");
    EXPECT_EQ(pdf.totals[1].label, "Tax 6%");
    EXPECT_EQ(pdf.totals[2].label, "Total CNY");
    EXPECT_EQ(pdf.totals[2].amount, "127.20");
    EXPECT_EQ(SumOfLines(pdf), Dec("120.00"));
    EXPECT_EQ(pdf.sha256, std::string(64, 'a'));
}

TEST(PdfOfCreditNote, AVoidCreditsEveryLineOfTheInvoice) {
    const render::PdfDocument pdf = PdfOfCreditNote(Note("void", "120.00", "7.20", "127.20"), Invoice(), Issuer());
    EXPECT_EQ(pdf.title, "Credit note");
    EXPECT_EQ(pdf.number, "CN-2026-000002");
    EXPECT_EQ(pdf.reference, "Credits invoice INV-2026-000003");
    EXPECT_EQ(pdf.status, "finalized");  // no DRAFT watermark: a credit note is final when issued
    EXPECT_EQ(pdf.issue_date, "2026-01-15");
    EXPECT_EQ(pdf.period, "2025-11 (2025-11-01 to 2025-11-30, Asia/Shanghai)");
    EXPECT_EQ(pdf.currency, "CNY");
    EXPECT_EQ(pdf.issuer.name, "示例云计算有限公司");
    EXPECT_EQ(pdf.issuer.tax_id, "91110000");
    EXPECT_EQ(pdf.customer.name, kCustomerName);
    EXPECT_EQ(pdf.customer.address, "Customer ID cust_volc_a");
    ASSERT_EQ(pdf.lines.size(), 3U);
    EXPECT_EQ(pdf.lines[0].quantity, "166,657,500 input_tokens");
    EXPECT_EQ(SumOfLines(pdf), Dec("120.00"));
    ASSERT_EQ(pdf.totals.size(), 3U);
    EXPECT_EQ(pdf.totals[0].label, "Subtotal credited");
    EXPECT_EQ(pdf.totals[0].amount, "120.00");
    EXPECT_EQ(pdf.totals[1].label, "Tax 6%");
    EXPECT_EQ(pdf.totals[1].amount, "7.20");
    EXPECT_EQ(pdf.totals[2].label, "Total credited CNY");
    EXPECT_EQ(pdf.totals[2].amount, "127.20");
    EXPECT_TRUE(pdf.totals[2].emphasis);
    bool reason = false;
    for (const auto& n : pdf.notes) reason = reason || n == "Reason: billing address was wrong";
    EXPECT_TRUE(reason);
    EXPECT_EQ(pdf.sha256, std::string(64, 'c'));
}

TEST(PdfOfCreditNote, AVoidAfterAPartialCreditTakesOffWhatWasCreditedBefore) {
    // 30.00 was credited earlier: the void credits the 90.00 left.
    const render::PdfDocument pdf = PdfOfCreditNote(Note("void", "90.00", "5.40", "95.40"), Invoice(), Issuer());
    ASSERT_EQ(pdf.lines.size(), 4U);
    EXPECT_EQ(pdf.lines[3].number, "4");
    EXPECT_EQ(pdf.lines[3].description, "Less what earlier credit notes of invoice INV-2026-000003 credited");
    EXPECT_EQ(pdf.lines[3].amount, "-30.00");
    EXPECT_EQ(SumOfLines(pdf), Dec("90.00"));
    EXPECT_EQ(pdf.totals[0].amount, "90.00");
    EXPECT_EQ(pdf.totals[2].amount, "95.40");
}

TEST(PdfOfCreditNote, APartialCreditIsOneLineOfItsAmount) {
    const render::PdfDocument pdf = PdfOfCreditNote(Note("partial", "10.00", "0.60", "10.60"), Invoice(), Issuer());
    ASSERT_EQ(pdf.lines.size(), 1U);
    EXPECT_EQ(pdf.lines[0].description, "Partial credit of invoice INV-2026-000003: billing address was wrong");
    EXPECT_EQ(pdf.lines[0].amount, "10.00");
    EXPECT_EQ(pdf.lines[0].quantity, "");
    EXPECT_EQ(pdf.totals[0].amount, "10.00");
    EXPECT_EQ(pdf.totals[1].amount, "0.60");
    EXPECT_EQ(pdf.totals[2].amount, "10.60");
}

TEST(CsvOf, CreditNotesOneRowEachWithFieldsQuoted) {
    billing::CreditNoteDocument cn = Note("partial", "10.00", "0.60", "10.60");
    cn.reason = "wrong rate, \"per 1K\"";
    const std::string csv = CsvOf(std::vector<billing::CreditNoteDocument>{cn});
    EXPECT_EQ(csv,
              "credit_note_number,kind,issuer,invoice_number,customer,customer_name,currency,reason,subtotal,tax,total,"
              "created_at,sha256\r\n"
              "CN-2026-000002,partial,demo,INV-2026-000003,cust_volc_a,华东智能科技有限公司,CNY,"
              "\"wrong rate, \"\"per 1K\"\"\",10.00,0.60,10.60,2026-01-15T08:00:00.000Z," +
                  std::string(64, 'c') + "\r\n");
}

TEST(JsonOf, InvoicesThenCreditNotesEachSayingWhichItIs) {
    EXPECT_EQ(JsonOf({}), "[]\n");
    const std::string json = JsonOf({Invoice()}, {Note("void", "120.00", "7.20", "127.20")});
    ASSERT_EQ(json.front(), '[');
    ASSERT_EQ(json.substr(json.size() - 2), "]\n");
    const size_t invoice = json.find(R"("document":"invoice","number":"INV-2026-000003")");
    const size_t note = json.find(R"("document":"credit_note","number":"CN-2026-000002")");
    ASSERT_NE(invoice, std::string::npos) << json;
    ASSERT_NE(note, std::string::npos) << json;
    EXPECT_LT(invoice, note);
    EXPECT_NE(json.find(R"("credit_note_id":2,)"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("sha256":")" + std::string(64, 'c') + "\"}"), std::string::npos) << json;
    EXPECT_NE(json.find("},\n{"), std::string::npos) << json;
}

std::string RunTool(const std::string& command, int* status) {
    std::string text;
    std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return text;
    char buffer[4096];
    size_t read = 0;
    while ((read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, read);
    const int raw = pclose(pipe);
    *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return text;
}

TEST(PdfOfCreditNote, RendersAsACreditNoteAReaderCanRead) {
    if (std::system("command -v pdftotext >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "pdftotext is missing: install the package poppler-utils";
    }
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("tally-cn-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string pdf_path = (dir / "CN-2026-000002.pdf").string();
    const std::string error =
        render::WriteInvoicePdf(PdfOfCreditNote(Note("void", "90.00", "5.40", "95.40"), Invoice(), Issuer()), pdf_path);
    ASSERT_EQ(error, "");
    int status = -1;
    // -raw: the text in content order, one table cell after another.
    const std::string text = RunTool("pdftotext -raw '" + pdf_path + "' -", &status);
    ASSERT_EQ(status, 0) << text;
    for (const char* want : {"Credit note", "CN-2026-000002", "Credits invoice INV-2026-000003", kCustomerName,
                             "示例云计算有限公司", "Subtotal credited", "90.00", "5.40", "95.40", "133.33", "-30.00",
                             "billing address was wrong", "2025-11-01 to 2025-11-30"}) {
        EXPECT_NE(text.find(want), std::string::npos) << "the PDF lacks '" << want << "':\n" << text;
    }
    EXPECT_EQ(text.find("DRAFT"), std::string::npos) << text;
    const std::string info = RunTool("pdfinfo '" + pdf_path + "'", &status);
    EXPECT_NE(info.find("Credit note CN-2026-000002"), std::string::npos) << info;  // the PDF's title
    if (std::getenv("TALLY_KEEP_PDF") == nullptr) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tally::documents

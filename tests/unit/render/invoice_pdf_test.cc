#include "render/invoice_pdf.h"

#include <cairo.h>
#include <gtest/gtest.h>
#include <pango/pangocairo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

// The PDF is checked as a reader sees it, with poppler's command-line tools
// (Debian package poppler-utils): pdftotext for the words, pdffonts for the
// embedded fonts, pdfinfo for the page size and count, pdftoppm for a picture
// of page 1. A test whose tool is missing is skipped and says so.

namespace tally::render {
namespace {

// LeakSanitizer (the ASan run of deploy/test.sh) reads these at start. Two
// leaks are the libraries' own, not the renderer's: fontconfig's parse of its
// configuration (FcInitLoadConfigAndFonts, once per process), and two small
// blocks per document in cairo 1.16's PDF writer (cairo_surface_finish).
// Debian's libraries have no frame pointers, so the fast unwinder sees only
// their module; naming the functions needs fast_unwind_on_malloc=0, which
// makes this suite take minutes under ASan. The renderer holds every cairo
// object in a unique_ptr, so a suppression by module hides little.
extern "C" const char* __lsan_default_suppressions() {
    return "leak:libfontconfig.so.1\nleak:libcairo.so.2\n";
}

// At exit, drop what cairo and pango keep for the process (the thread's
// default font map, cairo's font caches), so that LeakSanitizer reports only
// what the renderer itself failed to free.
class ReleaseLibraryCaches : public testing::Environment {
   public:
    void TearDown() override {
        pango_cairo_font_map_set_default(nullptr);
        cairo_debug_reset_static_data();
    }
};
const testing::Environment* const kReleaseLibraryCaches = testing::AddGlobalTestEnvironment(new ReleaseLibraryCaches);

constexpr const char* kCustomer = "北京月之暗面科技有限公司";
constexpr const char* kIssuer = "火山引擎云计算（北京）有限公司";
constexpr const char* kHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

struct Output {
    int status = -1;
    std::string text;  // stdout and stderr
};

Output RunTool(const std::string& command) {
    Output output;
    std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return output;
    char buffer[4096];
    size_t read = 0;
    while ((read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.text.append(buffer, read);
    const int status = pclose(pipe);
    output.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return output;
}

bool HaveTool(const std::string& tool) {
    return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

#define REQUIRE_TOOL(tool)                                                                             \
    do {                                                                                               \
        if (!HaveTool(tool)) GTEST_SKIP() << tool << " is missing: install the package poppler-utils"; \
    } while (false)

size_t Count(const std::string& text, const std::string& part) {
    size_t count = 0;
    for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++count;
    return count;
}

// A file under the test temporary directory, removed at the end of the test.
class TempFile {
   public:
    explicit TempFile(const std::string& name)
        : path_(testing::TempDir() + "tally-render-" + std::to_string(getpid()) + "-" + name) {}
    ~TempFile() { std::remove(path_.c_str()); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

   private:
    std::string path_;
};

int Pages(const std::string& pdf) {
    const Output info = RunTool("pdfinfo '" + pdf + "'");
    const size_t at = info.text.find("Pages:");
    if (info.status != 0 || at == std::string::npos) return -1;
    return std::atoi(info.text.c_str() + at + 6);
}

// "12,345.67" or "-1.00" from an amount in fen.
std::string Yuan(long long fen) {
    const bool negative = fen < 0;
    long long units = negative ? -fen : fen;
    std::string whole = std::to_string(units / 100);
    for (int at = static_cast<int>(whole.size()) - 3; at > 0; at -= 3) whole.insert(static_cast<size_t>(at), ",");
    const long long cents = units % 100;
    return (negative ? "-" : "") + whole + "." + (cents < 10 ? "0" : "") + std::to_string(cents);
}

struct Sample {
    PdfDocument doc;
    std::string total;  // the emphasised total's amount
};

// An invoice as the lead fills it: Chinese parties, `count` lines of which
// the seventh is a negative coupon line, tax and totals that add up.
Sample MakeSample(int count, const std::string& status) {
    const char* models[] = {"doubao-seed-1.6", "deepseek-v3.1", "qwen-plus", "hunyuan-pro", "kimi-k2"};
    const char* units[] = {"input", "output", "cache hit"};
    const char* bands[] = {"0-32000", "32000-128000"};
    Sample sample;
    PdfDocument& doc = sample.doc;
    doc.title = "Invoice";
    doc.number = status == "draft" ? "" : "INV-2025-000001";
    doc.status = status;
    doc.issue_date = "2025-12-01";
    doc.due_date = "2025-12-31";
    doc.period = "2025-11-01 – 2025-11-30 (Asia/Shanghai)";
    doc.currency = "CNY";
    doc.issuer = {kIssuer, "北京市海淀区中关村大街 1 号\nBeijing 100080, China", "91110108MA01ABCDE1",
                  "billing@volc.example"};
    doc.customer = {kCustomer, "北京市海淀区知春路 7 号 量子芯座 12 层", "91110108MA01XYZ001",
                    "finance@moonshot.example"};
    long long subtotal = 0;
    for (int i = 0; i < count; ++i) {
        PdfLine line;
        line.number = std::to_string(i + 1);
        if (i == 6) {
            line.description = "Coupon 新客立减 · −10 % on doubao-seed-1.6 input, 2025-11-01 to 2025-11-15";
            line.amount = "-1.00";
            subtotal -= 100;
        } else {
            const long long tokens = 1000003LL * (i % 17 + 1) + 7919LL * i;
            const long long fen = tokens / 9000 + i;
            line.description = std::string(models[i % 5]) + " · " + units[i % 3] + " · " + bands[i % 2] + " · v2025-06";
            if (i == 3) line.description += " · 深度思考模式 (thinking), 批量推理 (batch), 闲时折扣 00:30-08:30";
            line.quantity = Yuan(tokens * 100).substr(0, Yuan(tokens * 100).size() - 3) + " tokens";
            line.unit_price = Yuan(80 + (i % 4) * 40) + " / 1M";
            line.amount = Yuan(fen);
            subtotal += fen;
        }
        doc.lines.push_back(line);
    }
    const long long tax = subtotal * 6 / 100;
    sample.total = Yuan(subtotal + tax);
    doc.totals = {{"Subtotal", Yuan(subtotal), false}, {"Rounding (exact 0.004 below)", "0.00", false},
                  {"Tax 6%", Yuan(tax), false},        {"Total", sample.total, true},
                  {"Prepaid grant", "-100.00", false}, {"Amount due", Yuan(subtotal + tax - 10000), true}};
    doc.notes = {
        "Usage (exact) 1,234.564 CNY rounds to 1,234.56 CNY once, on the invoice's sum (plan rounding: invoice).",
        "Includes an adjustment for 2025-10: 3 late events accepted after INV-2025-000000 was finalized."};
    doc.sha256 = kHash;
    return sample;
}

// The pixels of page 1 at 40 dpi, as pdftoppm draws it, read back with cairo.
struct Picture {
    int width = 0, height = 0;
    std::vector<unsigned char> rgb;  // 3 bytes a pixel
};

Picture FirstPage(const std::string& pdf) {
    TempFile png("page.png");
    const std::string prefix = png.path().substr(0, png.path().size() - 4);
    Picture picture;
    const Output run = RunTool("pdftoppm -png -r 40 -f 1 -l 1 -singlefile '" + pdf + "' '" + prefix + "'");
    if (run.status != 0) return picture;
    cairo_surface_t* image = cairo_image_surface_create_from_png(png.path().c_str());
    if (cairo_surface_status(image) == CAIRO_STATUS_SUCCESS) {
        cairo_surface_flush(image);
        picture.width = cairo_image_surface_get_width(image);
        picture.height = cairo_image_surface_get_height(image);
        const int stride = cairo_image_surface_get_stride(image);
        const unsigned char* data = cairo_image_surface_get_data(image);
        for (int y = 0; y < picture.height; ++y) {
            for (int x = 0; x < picture.width; ++x) {
                // ARGB32 or RGB24: one native-endian 32-bit word, 0xAARRGGBB.
                std::uint32_t pixel = 0;
                std::memcpy(&pixel,
                            data + static_cast<size_t>(y) * static_cast<size_t>(stride) + 4 * static_cast<size_t>(x),
                            4);
                picture.rgb.push_back(static_cast<unsigned char>(pixel >> 16));
                picture.rgb.push_back(static_cast<unsigned char>(pixel >> 8));
                picture.rgb.push_back(static_cast<unsigned char>(pixel));
            }
        }
    }
    cairo_surface_destroy(image);
    return picture;
}

size_t DarkPixels(const Picture& picture) {
    size_t dark = 0;
    for (size_t i = 0; i + 2 < picture.rgb.size(); i += 3) {
        if (picture.rgb[i] + picture.rgb[i + 1] + picture.rgb[i + 2] < 3 * 128) ++dark;
    }
    return dark;
}

// Pixels clearly red (the watermark's colour, and nothing else's).
size_t ReddishPixels(const Picture& picture) {
    size_t red = 0;
    for (size_t i = 0; i + 2 < picture.rgb.size(); i += 3) {
        const int r = picture.rgb[i];
        const int g = picture.rgb[i + 1];
        const int b = picture.rgb[i + 2];
        if (r - g > 20 && r - b > 20) ++red;
    }
    return red;
}

class InvoicePdf : public testing::Test {
   protected:
    static void SetUpTestSuite() {
        sample_ = new Sample(MakeSample(150, "finalized"));
        file_ = new TempFile("sample.pdf");
        error_ = new std::string(WriteInvoicePdf(sample_->doc, file_->path()));
        // TALLY_RENDER_SAMPLE=/tmp/tally-sample-invoice.pdf keeps a copy to look at.
        if (const char* keep = std::getenv("TALLY_RENDER_SAMPLE"); keep != nullptr) {
            *error_ += WriteInvoicePdf(sample_->doc, keep);
        }
    }
    static void TearDownTestSuite() {
        delete error_;
        delete file_;
        delete sample_;
    }
    void SetUp() override { ASSERT_EQ(*error_, ""); }

    static Sample* sample_;
    static TempFile* file_;
    static std::string* error_;
};
Sample* InvoicePdf::sample_ = nullptr;
TempFile* InvoicePdf::file_ = nullptr;
std::string* InvoicePdf::error_ = nullptr;

TEST_F(InvoicePdf, TextHasTheChineseNamesTheNumberTheTotalAndEveryLine) {
    REQUIRE_TOOL("pdftotext");
    const Output text = RunTool("pdftotext -layout '" + file_->path() + "' -");
    ASSERT_EQ(text.status, 0) << text.text;
    EXPECT_NE(text.text.find(kCustomer), std::string::npos);
    EXPECT_NE(text.text.find(kIssuer), std::string::npos);
    EXPECT_NE(text.text.find("INV-2025-000001"), std::string::npos);
    EXPECT_NE(text.text.find(sample_->total + " CNY"), std::string::npos) << sample_->total;
    EXPECT_NE(text.text.find("-1.00"), std::string::npos);
    EXPECT_NE(text.text.find("新客立减"), std::string::npos);
    EXPECT_NE(text.text.find("Page 2 of "), std::string::npos);
    EXPECT_NE(text.text.find("BILL TO"), std::string::npos) << "the customer block is labelled";
    for (const PdfLine& line : sample_->doc.lines) {
        EXPECT_NE(text.text.find(line.amount), std::string::npos) << "line " << line.number;
    }
    EXPECT_NE(text.text.find(sample_->doc.notes[1].substr(0, 40)), std::string::npos);
}

TEST_F(InvoicePdf, EveryPageHasTheTableHeaderTheHashAndPageNOfM) {
    REQUIRE_TOOL("pdftotext");
    REQUIRE_TOOL("pdfinfo");
    const int pages = Pages(file_->path());
    ASSERT_GT(pages, 1);
    for (int page = 1; page <= pages; ++page) {
        const std::string number = std::to_string(page);
        const Output text = RunTool("pdftotext -f " + number + " -l " + number + " '" + file_->path() + "' -");
        ASSERT_EQ(text.status, 0) << text.text;
        EXPECT_NE(text.text.find("Page " + number + " of " + std::to_string(pages)), std::string::npos) << page;
        EXPECT_EQ(Count(text.text, std::string("SHA-256 ") + kHash), 1U) << page;
        // The last page may hold only the totals (kept together) and no table.
        if (page == pages && text.text.find(sample_->doc.lines.back().amount) == std::string::npos) continue;
        EXPECT_NE(text.text.find("Description"), std::string::npos) << "table header on page " << page;
        EXPECT_NE(text.text.find("Unit price"), std::string::npos) << "table header on page " << page;
    }
}

TEST_F(InvoicePdf, EmbedsNotoSansCjk) {
    REQUIRE_TOOL("pdffonts");
    const Output fonts = RunTool("pdffonts '" + file_->path() + "'");
    ASSERT_EQ(fonts.status, 0) << fonts.text;
    bool embedded = false;
    std::istringstream lines(fonts.text);
    for (std::string line; std::getline(lines, line);) {
        // name type encoding emb sub uni: "...+NotoSansCJKsc-Regular CID Type 0C Identity-H yes yes yes ..."
        if (line.find("NotoSansCJK") != std::string::npos && line.find(" yes ") != std::string::npos) embedded = true;
    }
    EXPECT_TRUE(embedded) << fonts.text;
}

TEST_F(InvoicePdf, IsA4WithSeveralPagesAndATitle) {
    REQUIRE_TOOL("pdfinfo");
    const Output info = RunTool("pdfinfo '" + file_->path() + "'");
    ASSERT_EQ(info.status, 0) << info.text;
    EXPECT_NE(info.text.find("595.276 x 841.89 pts (A4)"), std::string::npos) << info.text;
    EXPECT_NE(info.text.find("Invoice INV-2025-000001\n"), std::string::npos) << "the title: " << info.text;
    EXPECT_EQ(info.text.find("Error"), std::string::npos) << info.text;
    // 150 lines of about 22 points each (a few wrap) take more than three pages.
    EXPECT_GE(Pages(file_->path()), 4);
}

TEST_F(InvoicePdf, FirstPageIsAPictureWithInkAndNoWatermark) {
    REQUIRE_TOOL("pdftoppm");
    const Picture page = FirstPage(file_->path());
    ASSERT_GT(page.width, 0) << "pdftoppm gave no picture";
    // A4 at 40 dpi: 331 x 468 pixels.
    EXPECT_EQ(page.width, 331);
    EXPECT_EQ(page.height, 468);
    const size_t pixels = static_cast<size_t>(page.width) * static_cast<size_t>(page.height);
    EXPECT_GT(DarkPixels(page), pixels / 100) << "page 1 is (nearly) blank";
    EXPECT_LT(DarkPixels(page), pixels / 4) << "page 1 is (nearly) black";
    EXPECT_EQ(ReddishPixels(page), 0U) << "a finalized invoice has no watermark";
}

TEST(InvoicePdfStatus, DraftsAndVoidsCarryADiagonalWatermark) {
    REQUIRE_TOOL("pdftoppm");
    REQUIRE_TOOL("pdftotext");
    for (const std::string status : {"draft", "void", "finalized"}) {
        const Sample sample = MakeSample(12, status);
        TempFile pdf(status + ".pdf");
        ASSERT_EQ(WriteInvoicePdf(sample.doc, pdf.path()), "");
        const Picture page = FirstPage(pdf.path());
        ASSERT_GT(page.width, 0);
        const size_t pixels = static_cast<size_t>(page.width) * static_cast<size_t>(page.height);
        if (status == "finalized") {
            EXPECT_EQ(ReddishPixels(page), 0U);
        } else {
            EXPECT_GT(ReddishPixels(page), pixels / 50) << status;
        }
        const Output text = RunTool("pdftotext '" + pdf.path() + "' -");
        if (status == "draft") {
            EXPECT_NE(text.text.find("Draft, not numbered"), std::string::npos) << text.text;
            EXPECT_EQ(text.text.find("INV-2025-000001"), std::string::npos);
            EXPECT_NE(text.text.find("SHA-256 " + std::string(kHash)), std::string::npos);
        }
    }
}

TEST(InvoicePdfStatus, AnUnknownStatusIsADraftNotAFinalInvoice) {
    REQUIRE_TOOL("pdftoppm");
    Sample sample = MakeSample(3, "finalized");
    sample.doc.status = "FINALISED?";
    TempFile pdf("unknown.pdf");
    ASSERT_EQ(WriteInvoicePdf(sample.doc, pdf.path()), "");
    EXPECT_GT(ReddishPixels(FirstPage(pdf.path())), 1000U);
}

// Text that is not UTF-8, holds NULs and control characters, or is far too
// long still gives a PDF that poppler reads without complaint.
TEST(InvoicePdfHostile, InvalidUtf8NulHugeTextAndNoLinesGiveAValidPdf) {
    REQUIRE_TOOL("pdfinfo");
    REQUIRE_TOOL("pdftotext");
    const std::string bad = std::string("bad \xff\xfe \xc3\x28 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 nul", 26) +
                            std::string("\0", 1) + "after\x1b[31m\x7f\xc2\x85 end \xe4\xb8";
    Sample sample = MakeSample(5, "draft");
    PdfDocument& doc = sample.doc;
    doc.title = bad;
    doc.customer.name = bad + kCustomer;
    doc.issuer.address = bad;
    doc.period = bad;
    doc.currency = bad;
    doc.sha256 = bad + std::string(300, 'f');
    doc.lines[0].description = std::string(10000, 'x') + " ENDOFUNBROKEN";
    std::string words;
    while (words.size() < 10000) words += "长描述 long description ";
    doc.lines[1].description = words + "ENDOFWORDS";
    doc.lines[2].quantity = std::string(3000, '9');
    doc.lines[3].amount = bad;
    doc.totals.push_back({bad, bad, true});
    doc.notes.push_back(std::string(20000, 'n') + " ENDOFNOTE");
    TempFile pdf("hostile.pdf");
    ASSERT_EQ(WriteInvoicePdf(doc, pdf.path()), "");
    const Output info = RunTool("pdfinfo '" + pdf.path() + "'");
    ASSERT_EQ(info.status, 0) << info.text;
    EXPECT_EQ(info.text.find("Error"), std::string::npos) << info.text;
    // The unbroken 10,000 letters alone fill several pages: the row went on over pages.
    EXPECT_GE(Pages(pdf.path()), 4);
    const Output text = RunTool("pdftotext '" + pdf.path() + "' -");
    ASSERT_EQ(text.status, 0) << text.text;
    EXPECT_EQ(text.text.find("Error"), std::string::npos) << text.text.substr(0, 2000);
    for (const char* end : {"ENDOFUNBROKEN", "ENDOFWORDS", "ENDOFNOTE", "after", kCustomer}) {
        EXPECT_NE(text.text.find(end), std::string::npos) << end << " is missing: text was lost";
    }
    EXPECT_NE(text.text.find("\xEF\xBF\xBD"), std::string::npos) << "invalid bytes show as U+FFFD";
}

TEST(InvoicePdfHostile, AnEmptyDocumentGivesOnePageThatSaysNoLines) {
    REQUIRE_TOOL("pdfinfo");
    REQUIRE_TOOL("pdftotext");
    TempFile pdf("empty.pdf");
    ASSERT_EQ(WriteInvoicePdf(PdfDocument{}, pdf.path()), "");
    EXPECT_EQ(Pages(pdf.path()), 1);
    const Output text = RunTool("pdftotext '" + pdf.path() + "' -");
    EXPECT_NE(text.text.find("No lines."), std::string::npos) << text.text;
    EXPECT_NE(text.text.find("Page 1 of 1"), std::string::npos) << text.text;
}

TEST(InvoicePdfBytes, TheSameDocumentGivesTheSameBytes) {
    const Sample sample = MakeSample(60, "finalized");
    std::string error;
    const std::string first = InvoicePdfBytes(sample.doc, error);
    ASSERT_EQ(error, "");
    const std::string second = InvoicePdfBytes(sample.doc, error);
    ASSERT_EQ(error, "");
    EXPECT_EQ(first.substr(0, 5), "%PDF-");
    EXPECT_GT(first.size(), 10000U);
    EXPECT_TRUE(first == second) << "two renderings differ";
    EXPECT_EQ(first.find("/CreationDate"), std::string::npos) << "the time of rendering is not in the PDF";
}

TEST(WriteInvoicePdf, APathThatCannotBeWrittenIsAnErrorThatSaysWhy) {
    const Sample sample = MakeSample(2, "finalized");
    EXPECT_EQ(WriteInvoicePdf(sample.doc, "/nonexistent-tally-dir/invoice.pdf"),
              "cannot write the invoice PDF to /nonexistent-tally-dir/invoice.pdf: No such file or directory");
    EXPECT_EQ(WriteInvoicePdf(sample.doc, testing::TempDir()),
              "cannot write the invoice PDF to " + testing::TempDir() + ": Is a directory");
    EXPECT_EQ(WriteInvoicePdf(sample.doc, ""), "no path to write the invoice PDF to");
    std::ifstream absent("/nonexistent-tally-dir/invoice.pdf");
    EXPECT_FALSE(absent.good());
}

TEST(WriteInvoicePdf, ReplacesAnExistingFile) {
    TempFile pdf("replace.pdf");
    {
        std::ofstream old(pdf.path());
        old << std::string(1000000, 'o');
    }
    ASSERT_EQ(WriteInvoicePdf(MakeSample(2, "finalized").doc, pdf.path()), "");
    std::ifstream in(pdf.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.substr(0, 5), "%PDF-");
    EXPECT_EQ(bytes.find("ooooo"), std::string::npos);
    EXPECT_EQ(bytes.substr(bytes.size() - 6), "%%EOF\n");
}

// Without Noto Sans CJK SC the Chinese names would print as boxes: that is
// an error naming the package, not a PDF. Fontconfig reads its configuration
// once per process, so the test runs itself again with an empty one
// (TALLY_RENDER_FONT_PROBE set), and that run does the checking.
TEST(InvoicePdfFont, AMissingFontIsAnErrorNamingThePackage) {
    if (std::getenv("TALLY_RENDER_FONT_PROBE") != nullptr) {
        TempFile pdf("no-font.pdf");
        EXPECT_EQ(WriteInvoicePdf(MakeSample(2, "finalized").doc, pdf.path()),
                  "the font Noto Sans CJK SC is not installed (fontconfig finds no font at all): install the Debian "
                  "package fonts-noto-cjk");
        std::ifstream absent(pdf.path());
        EXPECT_FALSE(absent.good()) << "no file is written";
        return;
    }
    TempFile config("no-fonts.conf");
    {
        std::ofstream out(config.path());
        out << "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig></fontconfig>\n";
    }
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    const Output probe = RunTool("TALLY_RENDER_FONT_PROBE=1 FONTCONFIG_FILE='" + config.path() + "' '" + self +
                                 "' --gtest_filter=InvoicePdfFont.AMissingFontIsAnErrorNamingThePackage");
    EXPECT_EQ(probe.status, 0) << probe.text;
    EXPECT_NE(probe.text.find("[  PASSED  ] 1 test."), std::string::npos) << probe.text;
}

TEST(ToValidUtf8, KeepsValidTextAndReplacesWhatIsNot) {
    EXPECT_EQ(ToValidUtf8("INV-2025 北京 · € 😀"), "INV-2025 北京 · € 😀");
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(ToValidUtf8("a\xff"
                          "b"),
              "a" + fffd + "b");
    EXPECT_EQ(ToValidUtf8("\xc0\xaf"), fffd + fffd) << "overlong /";
    EXPECT_EQ(ToValidUtf8("\xe0\x80\xaf"), fffd + fffd + fffd) << "overlong, 3 bytes";
    EXPECT_EQ(ToValidUtf8("\xed\xa0\x80"), fffd + fffd + fffd) << "a surrogate";
    EXPECT_EQ(ToValidUtf8("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd) << "above U+10FFFF";
    EXPECT_EQ(ToValidUtf8("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf") << "U+10FFFF itself";
    EXPECT_EQ(ToValidUtf8("end\xe4\xb8"), "end" + fffd + fffd) << "truncated";
    EXPECT_EQ(ToValidUtf8("\xc3\x28"), fffd + "(");
}

TEST(ToValidUtf8, ReplacesControlCharactersAndKeepsLineBreaks) {
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(ToValidUtf8(std::string("a\0b", 3)), "a" + fffd + "b");
    EXPECT_EQ(ToValidUtf8("a\x1b[1m"), "a" + fffd + "[1m");
    EXPECT_EQ(ToValidUtf8("a\x7f\xc2\x85z"), "a" + fffd + fffd + "z") << "DEL and NEL (C1)";
    EXPECT_EQ(ToValidUtf8("a\tb"), "a b");
    EXPECT_EQ(ToValidUtf8("a\r\nb\rc\nd"), "a\nb\nc\nd");
    EXPECT_EQ(ToValidUtf8(""), "");
}

TEST(ToValidUtf8, CutsTextLongerThanTheMaximumOnACharacterBoundary) {
    std::string longest;
    while (longest.size() < kFieldBytesMax + 10) longest += "北";
    const std::string cut = ToValidUtf8(longest);
    const size_t kept = cut.find(" […");
    ASSERT_NE(kept, std::string::npos);
    EXPECT_GE(kept, kFieldBytesMax);
    EXPECT_LT(kept, kFieldBytesMax + 3);
    EXPECT_EQ(kept % 3, 0U) << "cut inside a character";
    EXPECT_EQ(cut.substr(kept), " […" + std::to_string(longest.size() - kept) + " more bytes not shown]");
    EXPECT_EQ(ToValidUtf8(std::string(kFieldBytesMax, 'a')), std::string(kFieldBytesMax, 'a'));
}

}  // namespace
}  // namespace tally::render

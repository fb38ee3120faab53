#include "render/invoice_pdf.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <pango/pangocairo.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace tally::render {

namespace {

// Geometry in PDF points (1/72 inch). A4 is 210 x 297 mm.
constexpr double kMillimetre = 72.0 / 25.4;
constexpr double kPageWidth = 210.0 * kMillimetre;
constexpr double kPageHeight = 297.0 * kMillimetre;
constexpr double kMargin = 18.0 * kMillimetre;
constexpr double kContentWidth = kPageWidth - 2.0 * kMargin;
constexpr double kFooterHeight = 24.0;  // below the content area, inside the bottom margin's line
constexpr double kContentBottom = kPageHeight - kMargin - kFooterHeight;
// A row taller than a page is split; below this much room it starts on the next page instead.
constexpr double kSplitRoomMin = 36.0;

// The lines table: # | description (wraps) | quantity | unit price | amount.
constexpr double kCellPad = 4.0;
constexpr double kColNumber = 28.0;  // "9999" fits
constexpr double kColQuantity = 84.0;
constexpr double kColUnitPrice = 68.0;
constexpr double kColAmount = 76.0;
constexpr double kColDescription = kContentWidth - kColNumber - kColQuantity - kColUnitPrice - kColAmount;
static_assert(kColDescription > 180.0, "the description column keeps room for its text");

// The totals block, right-aligned under the table.
constexpr double kTotalsWidth = 256.0;
constexpr double kTotalsAmountWidth = 104.0;

constexpr const char* kFontFamily = "Noto Sans CJK SC";

// Colours as 0xRRGGBB.
constexpr std::uint32_t kInk = 0x1A1D21;
constexpr std::uint32_t kMuted = 0x5C6670;
constexpr std::uint32_t kRuleLight = 0xD3D8DD;
constexpr std::uint32_t kHeaderFill = 0xECEFF2;
constexpr std::uint32_t kNoFill = 0xFFFFFFFF;
constexpr std::uint32_t kWatermark = 0xC8102E;

struct GObjectUnref {
    void operator()(void* object) const { g_object_unref(object); }
};
struct AttrListUnref {
    void operator()(PangoAttrList* list) const { pango_attr_list_unref(list); }
};
struct FontDescriptionFree {
    void operator()(PangoFontDescription* description) const { pango_font_description_free(description); }
};
struct CairoDestroy {
    void operator()(cairo_t* cr) const { cairo_destroy(cr); }
};
struct SurfaceDestroy {
    void operator()(cairo_surface_t* surface) const { cairo_surface_destroy(surface); }
};
using LayoutPtr = std::unique_ptr<PangoLayout, GObjectUnref>;
using ContextPtr = std::unique_ptr<PangoContext, GObjectUnref>;
using AttrListPtr = std::unique_ptr<PangoAttrList, AttrListUnref>;
using FontDescriptionPtr = std::unique_ptr<PangoFontDescription, FontDescriptionFree>;
using CairoPtr = std::unique_ptr<cairo_t, CairoDestroy>;
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDestroy>;

double FromPango(int units) {
    return static_cast<double>(units) / PANGO_SCALE;
}

int ToPango(double points) {
    return static_cast<int>(points * PANGO_SCALE);
}

void SetSource(cairo_t* cr, std::uint32_t rgb, double alpha = 1.0) {
    cairo_set_source_rgba(cr, static_cast<double>((rgb >> 16) & 0xFF) / 255.0,
                          static_cast<double>((rgb >> 8) & 0xFF) / 255.0, static_cast<double>(rgb & 0xFF) / 255.0,
                          alpha);
}

// ---------------------------------------------------------------------------
// Text with runs of style, turned into a pango layout. Every string goes
// through ToValidUtf8 on the way in: pango_layout_set_text needs valid UTF-8
// (it warns and draws nothing otherwise) and a NUL would end the text early.

struct Style {
    double size = 8.5;  // points
    bool bold = false;
    std::uint32_t color = kInk;
    bool tabular = false;  // digits of one width, so right-aligned amounts line up
    std::uint16_t alpha = 0xFFFF;
};

constexpr Style kBody{};
constexpr Style kBodyMuted{8.5, false, kMuted, false};
constexpr Style kLabel{7.0, true, kMuted, false};
constexpr Style kFigures{8.5, false, kInk, true};

class Text {
   public:
    Text& Add(std::string_view text, const Style& style) { return AddValid(ToValidUtf8(text), style); }
    // `text` on a line of its own; nothing when it is empty.
    Text& Line(std::string_view text, const Style& style) {
        if (text.empty()) return *this;
        if (!text_.empty()) AddValid("\n", style);
        return Add(text, style);
    }
    // A line "label value", left out when the value is empty.
    Text& Field(std::string_view label, std::string_view value, const Style& value_style) {
        if (value.empty()) return *this;
        Line(label, kBodyMuted);
        AddValid(" ", kBodyMuted);
        return Add(value, value_style);
    }
    bool empty() const { return text_.empty(); }

    LayoutPtr Layout(PangoContext* context, double width, PangoAlignment alignment) const {
        LayoutPtr layout(pango_layout_new(context));
        const FontDescriptionPtr font(pango_font_description_from_string(kFontFamily));
        pango_font_description_set_size(font.get(), ToPango(kBody.size));
        pango_layout_set_font_description(layout.get(), font.get());
        pango_layout_set_text(layout.get(), text_.data(), static_cast<int>(text_.size()));
        const AttrListPtr attributes(pango_attr_list_new());
        for (const Run& run : runs_) {
            for (PangoAttribute* attribute : Attributes(run.style)) {
                attribute->start_index = run.begin;
                attribute->end_index = run.end;
                pango_attr_list_insert(attributes.get(), attribute);  // takes ownership
            }
        }
        pango_layout_set_attributes(layout.get(), attributes.get());
        pango_layout_set_width(layout.get(), ToPango(width));
        pango_layout_set_wrap(layout.get(), PANGO_WRAP_WORD_CHAR);  // a 10,000-letter word wraps too
        pango_layout_set_alignment(layout.get(), alignment);
        return layout;
    }

   private:
    struct Run {
        guint begin, end;
        Style style;
    };

    Text& AddValid(const std::string& valid, const Style& style) {
        const auto begin = static_cast<guint>(text_.size());
        text_ += valid;
        runs_.push_back(Run{begin, static_cast<guint>(text_.size()), style});
        return *this;
    }

    static std::vector<PangoAttribute*> Attributes(const Style& style) {
        const auto channel = [&](int shift) { return static_cast<guint16>(((style.color >> shift) & 0xFF) * 257); };
        std::vector<PangoAttribute*> attributes = {
            pango_attr_size_new(ToPango(style.size)),
            pango_attr_weight_new(style.bold ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL),
            pango_attr_foreground_new(channel(16), channel(8), channel(0)),
        };
        if (style.tabular) attributes.push_back(pango_attr_font_features_new("tnum"));
        if (style.alpha != 0xFFFF) attributes.push_back(pango_attr_foreground_alpha_new(style.alpha));
        return attributes;
    }

    std::string text_;
    std::vector<Run> runs_;
};

// ---------------------------------------------------------------------------
// Rows of cells, flowed down pages. A row is drawn line by line, so that a
// row taller than a page (a hostile 10,000-character description) continues
// on the next page instead of running off the bottom.

struct LineBox {
    double top, bottom, baseline, x;  // in the layout's coordinates; x includes the alignment offset
    PangoLayoutLine* line;            // owned by the layout
};

struct Cell {
    double x;
    LayoutPtr layout;
    std::vector<LineBox> lines;  // never empty: pango gives even empty text one line
};

struct Row {
    std::vector<Cell> cells;
    double pad_top = 0.0, pad_bottom = 0.0;
    double x = kMargin, width = kContentWidth;  // what the fill and the rule below cover
    std::uint32_t fill = kNoFill;
    double rule_below = 0.0;  // line width, 0 for none
    std::uint32_t rule_color = kRuleLight;
};

std::vector<LineBox> LinesOf(PangoLayout* layout) {
    std::vector<LineBox> lines;
    PangoLayoutIter* iter = pango_layout_get_iter(layout);
    do {
        int top = 0;
        int bottom = 0;
        pango_layout_iter_get_line_yrange(iter, &top, &bottom);
        PangoRectangle logical{};
        pango_layout_iter_get_line_extents(iter, nullptr, &logical);
        lines.push_back(LineBox{FromPango(top), FromPango(bottom), FromPango(pango_layout_iter_get_baseline(iter)),
                                FromPango(logical.x), pango_layout_iter_get_line_readonly(iter)});
    } while (pango_layout_iter_next_line(iter) != FALSE);
    pango_layout_iter_free(iter);
    return lines;
}

Cell MakeCell(PangoContext* context, const Text& text, double x, double width, PangoAlignment alignment) {
    Cell cell{x, text.Layout(context, width, alignment), {}};
    cell.lines = LinesOf(cell.layout.get());
    return cell;
}

// Lines [from, to) of each cell: one piece of a row on one page.
using LineRange = std::vector<std::pair<size_t, size_t>>;

double PieceHeight(const Row& row, const LineRange& range) {
    double height = 0.0;
    for (size_t c = 0; c < row.cells.size(); ++c) {
        const auto [from, to] = range[c];
        if (from < to) height = std::max(height, row.cells[c].lines[to - 1].bottom - row.cells[c].lines[from].top);
    }
    return row.pad_top + height + row.pad_bottom;
}

LineRange WholeRow(const Row& row) {
    LineRange range;
    for (const Cell& cell : row.cells) range.emplace_back(0, cell.lines.size());
    return range;
}

double RowHeight(const Row& row) {
    return PieceHeight(row, WholeRow(row));
}

// What is drawn on every page besides the flow: the running header of the
// pages after the first, the footer and the watermark.
struct PageDecor {
    Text running_header;    // "Invoice INV-2025-000001 · customer (continued)"
    Text footer;            // "Invoice INV-2025-000001 · SHA-256 <hex>"
    std::string watermark;  // "DRAFT", "VOID" or ""
};

class Flow {
   public:
    // `cr` null: measure only (the first pass, which counts the pages for "Page N of M").
    Flow(cairo_t* cr, PangoContext* context, const PageDecor& decor, int pages_total)
        : cr_(cr), context_(context), decor_(decor), pages_total_(pages_total) {
        running_header_ = MakeCell(context_, decor_.running_header, kMargin, kContentWidth, PANGO_ALIGN_LEFT);
        pango_layout_set_single_paragraph_mode(running_header_.layout.get(), TRUE);
        pango_layout_set_ellipsize(running_header_.layout.get(), PANGO_ELLIPSIZE_END);
        running_header_.lines = LinesOf(running_header_.layout.get());
        BeginPage();
    }

    void Place(const Row& row) {
        LineRange range = WholeRow(row);
        for (;;) {
            const double height = PieceHeight(row, range);
            if (height <= kContentBottom - y_) {
                Draw(row, range, height);
                return;
            }
            if (!AtPageTop() && (height <= kContentBottom - ContinuationTop() || kContentBottom - y_ < kSplitRoomMin)) {
                NewPage();
                continue;
            }
            LineRange piece = Fit(row, range, kContentBottom - y_, AtPageTop());
            if (!Progresses(piece)) {  // not on an empty page, which always takes a line
                NewPage();
                continue;
            }
            Draw(row, piece, PieceHeight(row, piece));
            if (piece == range) return;  // lines taller than a page each: drawn, running over the margin
            for (size_t c = 0; c < range.size(); ++c) range[c].first = piece[c].second;
            NewPage();
        }
    }

    void Gap(double points) {
        if (!AtPageTop()) y_ = std::min(y_ + points, kContentBottom);
    }

    // Starts a new page unless `height` fits below, or would not fit on a new page either.
    void KeepTogether(double height) {
        if (!AtPageTop() && y_ + height > kContentBottom && height <= kContentBottom - ContinuationTop()) NewPage();
    }

    // The row drawn at the top of every further page while a table runs (null: none).
    void RepeatOnEachPage(const Row* row) { repeated_ = row; }

    // Closes the last page; returns how many pages there are.
    int Finish() {
        EndPage();
        return page_;
    }

   private:
    bool AtPageTop() const { return y_ <= page_top_; }

    double RunningHeaderHeight() const {
        const LineBox& line = running_header_.lines.front();
        return line.bottom - line.top + 8.0;
    }

    double ContinuationTop() const {
        return kMargin + RunningHeaderHeight() + (repeated_ != nullptr ? RowHeight(*repeated_) : 0.0);
    }

    static bool Progresses(const LineRange& piece) {
        return std::any_of(piece.begin(), piece.end(), [](const auto& lines) { return lines.first < lines.second; });
    }

    // The largest piece of `range` that fits in `room`: whole lines of each
    // cell. On an empty page (`force`) it takes at least one line of each
    // cell, even one taller than the room, so that the flow always moves on.
    static LineRange Fit(const Row& row, const LineRange& range, double room, bool force) {
        const double text_room = room - row.pad_top - row.pad_bottom;
        LineRange piece(range.size());
        for (size_t c = 0; c < range.size(); ++c) {
            const auto [from, to] = range[c];
            size_t end = from;
            while (end < to && row.cells[c].lines[end].bottom - row.cells[c].lines[from].top <= text_room) ++end;
            if (force && end == from && end < to) ++end;
            piece[c] = {from, end};
        }
        return piece;
    }

    void Draw(const Row& row, const LineRange& range, double height) {
        if (cr_ != nullptr) {
            if (row.fill != kNoFill) {
                SetSource(cr_, row.fill);
                cairo_rectangle(cr_, row.x, y_, row.width, height);
                cairo_fill(cr_);
            }
            for (size_t c = 0; c < row.cells.size(); ++c) {
                const Cell& cell = row.cells[c];
                const auto [from, to] = range[c];
                for (size_t i = from; i < to; ++i) {
                    const LineBox& box = cell.lines[i];
                    SetSource(cr_, kInk);
                    cairo_move_to(cr_, cell.x + box.x, y_ + row.pad_top + box.baseline - cell.lines[from].top);
                    pango_cairo_show_layout_line(cr_, box.line);
                }
            }
            if (row.rule_below > 0.0) {
                SetSource(cr_, row.rule_color);
                cairo_set_line_width(cr_, row.rule_below);
                cairo_move_to(cr_, row.x, y_ + height);
                cairo_line_to(cr_, row.x + row.width, y_ + height);
                cairo_stroke(cr_);
            }
        }
        y_ += height;
    }

    void NewPage() {
        EndPage();
        BeginPage();
    }

    void BeginPage() {
        ++page_;
        y_ = kMargin;
        if (page_ > 1) {
            if (cr_ != nullptr) {
                const LineBox& box = running_header_.lines.front();
                SetSource(cr_, kInk);
                cairo_move_to(cr_, kMargin + box.x, y_ + box.baseline - box.top);
                pango_cairo_show_layout_line(cr_, box.line);
            }
            y_ += RunningHeaderHeight();
            if (repeated_ != nullptr) Draw(*repeated_, WholeRow(*repeated_), RowHeight(*repeated_));
        }
        page_top_ = y_;
    }

    void EndPage() {
        if (cr_ == nullptr) return;
        DrawFooter();
        DrawWatermark();
        cairo_show_page(cr_);
    }

    void DrawFooter() {
        const double rule_y = kContentBottom + 8.0;
        SetSource(cr_, kRuleLight);
        cairo_set_line_width(cr_, 0.5);
        cairo_move_to(cr_, kMargin, rule_y);
        cairo_line_to(cr_, kMargin + kContentWidth, rule_y);
        cairo_stroke(cr_);

        constexpr double kPageLabelWidth = 90.0;
        const Style footer{6.5, false, kMuted, true};
        const LayoutPtr left = decor_.footer.Layout(context_, kContentWidth - kPageLabelWidth - 8.0, PANGO_ALIGN_LEFT);
        pango_layout_set_single_paragraph_mode(left.get(), TRUE);
        pango_layout_set_ellipsize(left.get(), PANGO_ELLIPSIZE_END);  // one line, whatever the hash field holds
        Text page_text;
        page_text.Add("Page " + std::to_string(page_) + " of " + std::to_string(pages_total_), footer);
        const LayoutPtr right = page_text.Layout(context_, kPageLabelWidth, PANGO_ALIGN_RIGHT);
        const double text_y = rule_y + 4.0;
        SetSource(cr_, kMuted);
        cairo_move_to(cr_, kMargin, text_y);
        pango_cairo_show_layout(cr_, left.get());
        cairo_move_to(cr_, kMargin + kContentWidth - kPageLabelWidth, text_y);
        pango_cairo_show_layout(cr_, right.get());
    }

    // A diagonal word across the page, drawn over the content in a light,
    // translucent red so that the content stays readable.
    void DrawWatermark() {
        if (decor_.watermark.empty()) return;
        Text text;
        text.Add(decor_.watermark, Style{120.0, true, kWatermark, false, 0x2A00});  // about 16 % opaque
        const LayoutPtr layout = text.Layout(context_, kPageHeight, PANGO_ALIGN_LEFT);
        pango_layout_set_width(layout.get(), -1);
        PangoRectangle logical{};
        pango_layout_get_extents(layout.get(), nullptr, &logical);
        cairo_save(cr_);
        cairo_translate(cr_, kPageWidth / 2.0, kPageHeight / 2.0);
        cairo_rotate(cr_, -std::atan2(kPageHeight, kPageWidth));
        cairo_move_to(cr_, -FromPango(logical.width) / 2.0, -FromPango(logical.height) / 2.0);
        pango_cairo_show_layout(cr_, layout.get());
        cairo_restore(cr_);
    }

    cairo_t* cr_;
    PangoContext* context_;
    const PageDecor& decor_;
    int pages_total_;
    Cell running_header_;
    const Row* repeated_ = nullptr;
    int page_ = 0;
    double y_ = kMargin;
    double page_top_ = kMargin;
};

// ---------------------------------------------------------------------------
// The document as rows.

// `text` equals `lower`, a lower-case ASCII word, ignoring ASCII case.
bool EqualsAscii(std::string_view text, std::string_view lower) {
    return text.size() == lower.size() && std::equal(text.begin(), text.end(), lower.begin(), [](char x, char y) {
               return (x >= 'A' && x <= 'Z' ? static_cast<char>(x - 'A' + 'a') : x) == y;
           });
}

std::string TrimAscii(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return std::string(text);
}

std::string WatermarkOf(std::string_view status) {
    const std::string trimmed = TrimAscii(status);
    if (EqualsAscii(trimmed, "finalized")) return "";
    if (EqualsAscii(trimmed, "void")) return "VOID";
    return "DRAFT";
}

std::string TitleOf(const PdfDocument& doc) {
    return doc.title.empty() ? std::string("Invoice") : doc.title;
}

// "Invoice INV-2025-000001", or "Invoice (draft, not numbered)".
std::string TitleAndNumber(const PdfDocument& doc) {
    return TitleOf(doc) + (doc.number.empty() ? std::string(" (draft, not numbered)") : " " + doc.number);
}

struct Content {
    Row header, parties, table_header, totals_note, notes_heading;
    std::vector<Row> lines, totals, notes;
};

Row PartyRow(PangoContext* context, const PdfDocument& doc) {
    constexpr double kLeftWidth = kContentWidth * 0.50;
    constexpr double kRightWidth = kContentWidth * 0.46;
    Text issuer;
    issuer.Add(doc.issuer.name, Style{13.0, true, kInk, false});
    issuer.Line(doc.issuer.address, kBody).Field("Tax ID", doc.issuer.tax_id, kBody).Line(doc.issuer.email, kBody);
    Text title;
    title.Add(TitleOf(doc), Style{20.0, true, kInk, false});
    title.Line(doc.number.empty() ? std::string("Draft, not numbered") : "No. " + doc.number,
               Style{10.0, true, kInk, false});
    title.Field("Issue date", doc.issue_date, kBody).Field("Due date", doc.due_date, kBody);
    title.Field("Status", doc.status, kBody);
    Row row;
    row.pad_bottom = 12.0;
    row.rule_below = 0.9;
    row.rule_color = kInk;
    row.cells.push_back(MakeCell(context, issuer, kMargin, kLeftWidth, PANGO_ALIGN_LEFT));
    row.cells.push_back(
        MakeCell(context, title, kMargin + kContentWidth - kRightWidth, kRightWidth, PANGO_ALIGN_RIGHT));
    return row;
}

Row BillToRow(PangoContext* context, const PdfDocument& doc) {
    constexpr double kLeftWidth = kContentWidth * 0.50;
    constexpr double kRightWidth = kContentWidth * 0.46;
    Text customer;
    customer.Add("BILL TO", kLabel).Line(doc.customer.name, Style{11.0, true, kInk, false});
    customer.Line(doc.customer.address, kBody).Field("Tax ID", doc.customer.tax_id, kBody);
    customer.Line(doc.customer.email, kBody);
    Text terms;
    terms.Add("BILLING PERIOD", kLabel).Line(doc.period, Style{9.5, true, kInk, false});
    terms.Line("CURRENCY", kLabel).Line(doc.currency, Style{10.0, true, kInk, false});
    if (!doc.reference.empty()) terms.Line("REFERENCE", kLabel).Line(doc.reference, kBody);
    Row row;
    row.pad_top = 12.0;
    row.cells.push_back(MakeCell(context, customer, kMargin, kLeftWidth, PANGO_ALIGN_LEFT));
    row.cells.push_back(
        MakeCell(context, terms, kMargin + kContentWidth - kRightWidth, kRightWidth, PANGO_ALIGN_RIGHT));
    return row;
}

// The five columns of the table, each cell inset by kCellPad.
Row TableRow(PangoContext* context, const std::vector<Text>& texts) {
    const double widths[] = {kColNumber, kColDescription, kColQuantity, kColUnitPrice, kColAmount};
    const PangoAlignment alignments[] = {PANGO_ALIGN_LEFT, PANGO_ALIGN_LEFT, PANGO_ALIGN_RIGHT, PANGO_ALIGN_RIGHT,
                                         PANGO_ALIGN_RIGHT};
    Row row;
    double x = kMargin;
    for (size_t c = 0; c < texts.size() && c < std::size(widths); ++c) {
        row.cells.push_back(MakeCell(context, texts[c], x + kCellPad, widths[c] - 2.0 * kCellPad, alignments[c]));
        x += widths[c];
    }
    row.pad_top = 3.5;
    row.pad_bottom = 3.5;
    row.rule_below = 0.4;
    return row;
}

Row TableHeader(PangoContext* context, const PdfDocument& doc) {
    const Style style{7.5, true, kInk, false};
    std::vector<Text> texts(5);
    texts[0].Add("#", style);
    texts[1].Add("Description", style);
    texts[2].Add("Quantity", style);
    texts[3].Add("Unit price", style);
    texts[4].Add(doc.currency.empty() ? std::string("Amount") : "Amount (" + doc.currency + ")", style);
    Row row = TableRow(context, texts);
    row.pad_top = 5.0;
    row.pad_bottom = 5.0;
    row.fill = kHeaderFill;
    row.rule_below = 0.8;
    row.rule_color = kInk;
    return row;
}

Row LineRow(PangoContext* context, const PdfLine& line) {
    std::vector<Text> texts(5);
    texts[0].Add(line.number, kBodyMuted);
    texts[1].Add(line.description, kBody);
    texts[2].Add(line.quantity, kFigures);
    texts[3].Add(line.unit_price, kFigures);
    texts[4].Add(line.amount, kFigures);
    return TableRow(context, texts);
}

Row NoLinesRow(PangoContext* context) {
    std::vector<Text> texts(2);
    texts[1].Add("No lines.", kBodyMuted);
    return TableRow(context, texts);
}

bool Contains(std::string_view text, std::string_view part) {
    return !part.empty() && text.find(part) != std::string_view::npos;
}

Row TotalRow(PangoContext* context, const PdfTotal& total, const std::string& currency) {
    constexpr double kX = kMargin + kContentWidth - kTotalsWidth;
    const Style label_style = total.emphasis ? Style{10.5, true, kInk, false} : kBody;
    const Style amount_style = total.emphasis ? Style{10.5, true, kInk, true} : kFigures;
    Text label;
    label.Add(total.label, label_style);
    Text amount;
    amount.Add(total.amount, amount_style);
    // The currency is named on the emphasised rows (the total, the amount due).
    if (total.emphasis && !currency.empty() && !Contains(total.amount, currency))
        amount.Add(" " + currency, amount_style);
    Row row;
    row.x = kX;
    row.width = kTotalsWidth;
    row.pad_top = total.emphasis ? 5.5 : 3.5;
    row.pad_bottom = total.emphasis ? 5.5 : 3.5;
    row.rule_below = total.emphasis ? 0.9 : 0.4;
    row.rule_color = total.emphasis ? kInk : kRuleLight;
    if (total.emphasis) row.fill = kHeaderFill;
    row.cells.push_back(
        MakeCell(context, label, kX + kCellPad, kTotalsWidth - kTotalsAmountWidth - kCellPad, PANGO_ALIGN_LEFT));
    row.cells.push_back(MakeCell(context, amount, kX + kTotalsWidth - kTotalsAmountWidth, kTotalsAmountWidth - kCellPad,
                                 PANGO_ALIGN_RIGHT));
    return row;
}

Row TextRow(PangoContext* context, const Text& text, double x, double width, PangoAlignment alignment) {
    Row row;
    row.cells.push_back(MakeCell(context, text, x, width, alignment));
    return row;
}

Row NoteRow(PangoContext* context, const std::string& note) {
    constexpr double kIndent = 10.0;
    Text bullet;
    bullet.Add("•", kBodyMuted);
    Text text;
    text.Add(note, Style{8.0, false, kInk, false});
    Row row;
    row.pad_bottom = 3.0;
    row.cells.push_back(MakeCell(context, bullet, kMargin, kIndent, PANGO_ALIGN_LEFT));
    row.cells.push_back(MakeCell(context, text, kMargin + kIndent, kContentWidth - kIndent, PANGO_ALIGN_LEFT));
    return row;
}

Content BuildContent(PangoContext* context, const PdfDocument& doc) {
    Content content;
    content.header = PartyRow(context, doc);
    content.parties = BillToRow(context, doc);
    content.table_header = TableHeader(context, doc);
    for (const PdfLine& line : doc.lines) content.lines.push_back(LineRow(context, line));
    if (doc.lines.empty()) content.lines.push_back(NoLinesRow(context));
    for (const PdfTotal& total : doc.totals) content.totals.push_back(TotalRow(context, total, doc.currency));
    if (!doc.currency.empty()) {
        Text note;
        note.Add("All amounts in " + doc.currency + ".", kBodyMuted);
        content.totals_note = TextRow(context, note, kMargin, kContentWidth, PANGO_ALIGN_RIGHT);
        content.totals_note.pad_top = 4.0;
    }
    Text heading;
    heading.Add("Notes", Style{9.0, true, kInk, false});
    content.notes_heading = TextRow(context, heading, kMargin, kContentWidth, PANGO_ALIGN_LEFT);
    content.notes_heading.pad_bottom = 4.0;
    for (const std::string& note : doc.notes) content.notes.push_back(NoteRow(context, note));
    return content;
}

// Lays the content out on `flow`; the same calls in both passes.
void Lay(Flow& flow, const Content& content) {
    flow.Place(content.header);
    flow.Place(content.parties);
    flow.Gap(18.0);
    flow.KeepTogether(RowHeight(content.table_header) + RowHeight(content.lines.front()));
    flow.Place(content.table_header);
    flow.RepeatOnEachPage(&content.table_header);
    for (const Row& row : content.lines) flow.Place(row);
    flow.RepeatOnEachPage(nullptr);

    flow.Gap(10.0);
    double totals_height = content.totals_note.cells.empty() ? 0.0 : RowHeight(content.totals_note);
    for (const Row& row : content.totals) totals_height += RowHeight(row);
    flow.KeepTogether(totals_height);
    for (const Row& row : content.totals) flow.Place(row);
    if (!content.totals_note.cells.empty()) flow.Place(content.totals_note);

    if (!content.notes.empty()) {
        flow.Gap(18.0);
        flow.KeepTogether(RowHeight(content.notes_heading) + RowHeight(content.notes.front()));
        flow.Place(content.notes_heading);
        for (const Row& row : content.notes) flow.Place(row);
    }
}

PageDecor DecorOf(const PdfDocument& doc) {
    const Style style{6.5, false, kMuted, false};
    PageDecor decor;
    decor.running_header.Add(TitleAndNumber(doc), Style{7.5, true, kMuted, false});
    if (!doc.customer.name.empty())
        decor.running_header.Add(" · " + doc.customer.name, Style{7.5, false, kMuted, false});
    decor.running_header.Add(" (continued)", Style{7.5, false, kMuted, false});
    decor.footer.Add(TitleAndNumber(doc) + " · SHA-256 ", style);
    decor.footer.Add(doc.sha256.empty() ? std::string("none (not finalized)") : doc.sha256,
                     Style{6.5, false, kMuted, true});
    decor.watermark = WatermarkOf(doc.status);
    return decor;
}

// "" if fontconfig gives pango the Noto Sans CJK SC font, else why not.
std::string CheckFont(PangoContext* context) {
    const FontDescriptionPtr wanted(pango_font_description_from_string(kFontFamily));
    PangoFont* font = pango_context_load_font(context, wanted.get());
    std::string family;
    if (font != nullptr) {
        const FontDescriptionPtr got(pango_font_describe(font));
        const char* name = pango_font_description_get_family(got.get());
        family = name != nullptr ? name : "";
        g_object_unref(font);
    }
    if (EqualsAscii(family, "noto sans cjk sc")) return "";
    const std::string offer = family.empty() ? "fontconfig finds no font at all" : "fontconfig offers " + family;
    return std::string("the font ") + kFontFamily + " is not installed (" + offer +
           "): install the Debian package fonts-noto-cjk";
}

cairo_status_t AppendToString(void* closure, const unsigned char* data, unsigned int length) {
    try {
        static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
        return CAIRO_STATUS_SUCCESS;
    } catch (const std::bad_alloc&) {
        return CAIRO_STATUS_NO_MEMORY;
    }
}

void SetMetadata(cairo_surface_t* surface, const PdfDocument& doc) {
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, ToValidUtf8(TitleAndNumber(doc)).c_str());
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_AUTHOR, ToValidUtf8(doc.issuer.name).c_str());
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_SUBJECT,
                                   ToValidUtf8(doc.customer.name + " · " + doc.period).c_str());
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "Tally");
    // cairo stamps the time of rendering as /CreationDate unless told
    // otherwise; a date it cannot parse ("") leaves the entry out, so that
    // the same invoice always gives the same bytes. The issue date is printed.
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATE_DATE, "");
}

// The UTF-8 sequence at text[at]: its length and code point, or 0 when the
// bytes there are not a well-formed sequence (RFC 3629, Unicode table 3-7).
size_t DecodeUtf8(std::string_view text, size_t at, char32_t& code_point) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[at + i]); };
    const unsigned char lead = byte(0);
    if (lead < 0x80) {
        code_point = lead;
        return 1;
    }
    size_t length = 0;
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) second_min = 0xA0;  // overlong
        if (lead == 0xED) second_max = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) second_min = 0x90;  // overlong
        if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
    } else {
        return 0;
    }
    if (text.size() - at < length) return 0;
    if (byte(1) < second_min || byte(1) > second_max) return 0;
    char32_t value = lead & (0x7F >> length);
    for (size_t i = 1; i < length; ++i) {
        if ((byte(i) & 0xC0) != 0x80) return 0;
        value = (value << 6) | (byte(i) & 0x3F);
    }
    code_point = value;
    return length;
}

}  // namespace

std::string ToValidUtf8(std::string_view text) {
    constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
    std::string valid;
    valid.reserve(std::min(text.size(), kFieldBytesMax) + 64);
    size_t at = 0;
    while (at < text.size()) {
        if (valid.size() >= kFieldBytesMax) {
            valid += " […" + std::to_string(text.size() - at) + " more bytes not shown]";
            break;
        }
        char32_t code_point = 0;
        const size_t length = DecodeUtf8(text, at, code_point);
        if (length == 0) {
            valid += kReplacement;
            ++at;
        } else if (code_point == '\r' || code_point == '\n') {
            valid += '\n';
            at += (code_point == '\r' && at + 1 < text.size() && text[at + 1] == '\n') ? size_t{2} : size_t{1};
        } else if (code_point == '\t') {
            valid += ' ';
            ++at;
        } else if (code_point < 0x20 || code_point == 0x7F || (code_point >= 0x80 && code_point <= 0x9F)) {
            valid += kReplacement;
            at += length;
        } else {
            valid.append(text.substr(at, length));
            at += length;
        }
    }
    return valid;
}

std::string InvoicePdfBytes(const PdfDocument& doc, std::string& error) {
    error.clear();
    std::string pdf;
    const SurfacePtr surface(cairo_pdf_surface_create_for_stream(AppendToString, &pdf, kPageWidth, kPageHeight));
    const CairoPtr cr(cairo_create(surface.get()));
    const ContextPtr context(pango_cairo_create_context(cr.get()));
    // Lay out in PDF points, with no hinting: the layout is the same on every
    // machine and at every zoom.
    pango_cairo_context_set_resolution(context.get(), 72.0);
    cairo_font_options_t* options = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
    pango_cairo_context_set_font_options(context.get(), options);
    cairo_font_options_destroy(options);
    pango_context_set_round_glyph_positions(context.get(), FALSE);

    error = CheckFont(context.get());
    if (!error.empty()) return "";
    SetMetadata(surface.get(), doc);
    {
        const Content content = BuildContent(context.get(), doc);
        const PageDecor decor = DecorOf(doc);
        Flow measure(nullptr, context.get(), decor, 0);
        Lay(measure, content);
        const int pages = measure.Finish();
        Flow draw(cr.get(), context.get(), decor, pages);
        Lay(draw, content);
        const int drawn = draw.Finish();
        if (drawn != pages) {
            error = "the invoice PDF came out with " + std::to_string(drawn) + " pages where its layout counted " +
                    std::to_string(pages) + " (a bug in render/invoice_pdf.cc)";
            return "";
        }
    }
    if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) {
        error = std::string("cairo could not draw the invoice: ") + cairo_status_to_string(cairo_status(cr.get()));
        return "";
    }
    cairo_surface_finish(surface.get());
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
        error = std::string("cairo could not write the invoice PDF: ") +
                cairo_status_to_string(cairo_surface_status(surface.get()));
        return "";
    }
    return pdf;
}

std::string WriteInvoicePdf(const PdfDocument& doc, const std::string& path) {
    if (path.empty()) return "no path to write the invoice PDF to";
    std::string error;
    const std::string pdf = InvoicePdfBytes(doc, error);
    if (!error.empty()) return error;
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) {
        return "cannot write the invoice PDF to " + path + ": " + std::generic_category().message(errno);
    }
    const size_t written = std::fwrite(pdf.data(), 1, pdf.size(), file);
    const int write_errno = errno;
    const bool closed = std::fclose(file) == 0;
    if (written != pdf.size() || !closed) {
        const int cause = written != pdf.size() ? write_errno : errno;
        std::remove(path.c_str());
        return "cannot write the invoice PDF to " + path + ": " + std::generic_category().message(cause);
    }
    return "";
}

}  // namespace tally::render

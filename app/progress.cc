#include "app/progress.h"

#include <unistd.h>

#include <algorithm>

#include "base/assert.h"

namespace tally {

namespace {

std::string TwoDigits(int64_t n) {
    return (n < 10 ? "0" : "") + std::to_string(n);
}

std::string Duration(int64_t seconds) {
    if (seconds < 60) return std::to_string(seconds) + "s";
    if (seconds < 3600) return std::to_string(seconds / 60) + "m" + TwoDigits(seconds % 60) + "s";
    return std::to_string(seconds / 3600) + "h" + TwoDigits(seconds % 3600 / 60) + "m";
}

constexpr int kBarWidth = 24;

}  // namespace

Progress::Progress(std::ostream& out, Options options) : out_(out), options_(std::move(options)) {
    if (!options_.now) options_.now = [] { return Clock::now(); };
    terminal_ = options_.terminal.value_or(isatty(STDERR_FILENO) == 1);
    start_ = options_.now();
    last_draw_ = start_;
}

Progress::~Progress() {
    if (!finished_) Done();
}

void Progress::Advance(int64_t n) {
    TALLY_ASSERT(n >= 0);
    TALLY_ASSERT(!finished_);
    done_ += n;
    const Clock::time_point now = options_.now();
    const auto every = terminal_ ? options_.redraw_every : options_.line_every;
    if (now - last_draw_ >= every) {
        last_draw_ = now;
        Draw(false);
    }
}

void Progress::Done() {
    if (finished_) return;
    finished_ = true;
    Draw(true);
}

std::string Progress::Render() const {
    const int64_t elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.now() - start_).count();
    std::string s = std::to_string(done_);
    const int64_t total = options_.total;
    if (total >= 0) s += "/" + std::to_string(total);
    s += " " + options_.what;
    if (total > 0) {
        const int64_t shown = std::min(done_, total);
        s += "  " + std::to_string(shown * 100 / total) + "% [";
        const int64_t filled = shown * kBarWidth / total;
        s += std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(kBarWidth - filled), ' ');
        s += "]";
    }
    if (elapsed_ms > 0) {
        // Tenths of an item a second, in integers.
        const int64_t tenths = done_ * 10000 / elapsed_ms;
        s += "  " + std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "/s";
    }
    if (total >= 0 && done_ > 0 && done_ < total) {
        s += "  ETA " + Duration((total - done_) * elapsed_ms / done_ / 1000);
    }
    s += "  " + Duration(elapsed_ms / 1000) + " elapsed";
    return s;
}

void Progress::Draw(bool final) {
    const std::string text = Render();
    if (terminal_) {
        // Back to the line's start and over the previous state.
        out_ << '\r' << text;
        if (text.size() < drawn_width_) out_ << std::string(drawn_width_ - text.size(), ' ');
        drawn_width_ = text.size();
        if (final) out_ << '\n';
    } else {
        out_ << (final ? "done: " : "progress: ") << text << '\n';
    }
    out_.flush();
}

}  // namespace tally

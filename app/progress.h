// Progress of a long run on stderr: on a terminal a bar with the rate and
// the time left, redrawn at most 10 times a second; otherwise (a log, a
// pipe) one line every 5 seconds. Quote --all-customers advances it per
// customer; invoice runs will too.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

namespace tally {

class Progress {
   public:
    using Clock = std::chrono::steady_clock;

    struct Options {
        std::string what = "items";  // what is counted ("customers")
        int64_t total = -1;          // -1: not known (no bar, no time left)
        // Whether `out` is a terminal; default: isatty(stderr).
        std::optional<bool> terminal;
        std::chrono::milliseconds redraw_every{100};  // on a terminal
        std::chrono::milliseconds line_every{5000};   // otherwise
        // The clock, for tests; default: steady_clock::now.
        std::function<Clock::time_point()> now;
    };

    Progress(std::ostream& out, Options options);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // `n` more done. Draws when it is time to.
    void Advance(int64_t n = 1);
    // The last state, once (a terminal's bar is ended by a newline).
    // Called by the destructor when not called before.
    void Done();

    int64_t done() const { return done_; }
    // The text of the current state, without the terminal's control
    // characters: "12/40 customers  30% [#####     ]  4.0/s  ETA 7s".
    std::string Render() const;

   private:
    void Draw(bool final);

    std::ostream& out_;
    Options options_;
    bool terminal_ = false;
    Clock::time_point start_;
    Clock::time_point last_draw_;
    int64_t done_ = 0;
    bool finished_ = false;
    size_t drawn_width_ = 0;
};

}  // namespace tally

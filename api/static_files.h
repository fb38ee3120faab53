// The web pages of `tally serve` (web/ in the source tree): GET / is
// index.html, GET /finance is finance.html (the finance page), GET
// /static/<path> is the file at <path> under the web directory. No key needed; the server adds the same security headers as
// on the API. The files are read once, when the server starts: a request
// is answered only when its raw path is exactly one of them, so nothing a
// request says (.., %2e%2e, NUL, backslashes, a directory) ever reaches
// the file system; anything else under /static is a 404.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/service.h"

namespace tally::api {

inline constexpr size_t kStaticFileMax = 8 * 1024 * 1024;  // bytes of one file

class StaticFiles {
   public:
    // Reads every regular file under `dir` (not following symbolic links,
    // skipping names that start with '.') whose extension has a known
    // Content-Type (ContentTypeOf). Throws std::runtime_error naming the
    // path when `dir` is not a directory, has no index.html, or a file
    // cannot be read or is larger than kStaticFileMax.
    static std::shared_ptr<const StaticFiles> Load(const std::string& dir);

    // Whether the pages answer `target` (path "/", "/finance" or under "/static/").
    static bool Handles(std::string_view target);

    // Answers a request Handles() accepted: 200 with the file, 404
    // not_found (the API's body) for anything that is not one of the files,
    // 405 for a method other than GET. Never throws.
    Response Serve(std::string_view method, std::string_view target) const;

    // "text/css; charset=utf-8" for "x.css"; "" for an extension not served.
    static std::string_view ContentTypeOf(std::string_view name);

    // The files served, by path under the directory ("vendor/uPlot.min.css").
    std::vector<std::string> Paths() const;
    const std::string& dir() const { return dir_; }

   private:
    struct File {
        std::string content_type;
        std::string body;
    };
    std::string dir_;
    std::map<std::string, File, std::less<>> files_;
};

// The routes the pages add to Routes(), as "METHOD pattern", for
// docs/openapi.yaml (tests/unit/api/routes_test.cc).
const std::vector<std::pair<std::string_view, std::string_view>>& StaticRoutes();

}  // namespace tally::api

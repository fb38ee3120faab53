#include "api/static_files.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include "api/request.h"
#include "base/assert.h"

namespace tally::api {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kStaticPrefix = "/static/";
constexpr std::string_view kFinancePath = "/finance";  // the finance page, web/finance.html

// Letters, digits, '.', '-', '_' and '/' between names: the only paths
// served; a file whose path has anything else is skipped when loading.
bool PlainPath(std::string_view path) {
    if (path.empty() || path.front() == '/' || path.back() == '/') return false;
    if (path.find("..") != std::string_view::npos || path.find("//") != std::string_view::npos) return false;
    for (const char c : path) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '-' || c == '_' || c == '/';
        if (!ok) return false;
    }
    return true;
}

std::string ReadFile(const fs::path& path, uintmax_t size) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad() || body.size() != size) throw std::runtime_error("cannot read " + path.string());
    return body;
}

}  // namespace

std::string_view StaticFiles::ContentTypeOf(std::string_view name) {
    static const std::pair<std::string_view, std::string_view> kTypes[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
    };
    for (const auto& [ext, type] : kTypes) {
        if (name.size() > ext.size() && name.substr(name.size() - ext.size()) == ext) return type;
    }
    return {};
}

std::shared_ptr<const StaticFiles> StaticFiles::Load(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw std::runtime_error(dir + ": not a directory");
    auto out = std::make_shared<StaticFiles>();
    out->dir_ = dir;
    fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
    if (ec) throw std::runtime_error(dir + ": " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) throw std::runtime_error(dir + ": " + ec.message());
        const fs::path& path = it->path();
        const std::string name = path.filename().string();
        if (!name.empty() && name.front() == '.') {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        const fs::file_status st = it->symlink_status(ec);
        if (ec || !fs::is_regular_file(st)) continue;  // directories are walked; links and the rest skipped
        const std::string relative = path.lexically_relative(dir).generic_string();
        const std::string_view type = ContentTypeOf(relative);
        if (type.empty() || !PlainPath(relative)) continue;
        const uintmax_t size = it->file_size(ec);
        if (ec) throw std::runtime_error("cannot read " + path.string() + ": " + ec.message());
        if (size > kStaticFileMax) {
            throw std::runtime_error(path.string() + ": larger than " + std::to_string(kStaticFileMax) + " bytes");
        }
        out->files_.emplace(relative, File{std::string(type), ReadFile(path, size)});
    }
    if (out->files_.find("index.html") == out->files_.end()) throw std::runtime_error(dir + ": no index.html");
    return out;
}

bool StaticFiles::Handles(std::string_view target) {
    const std::string_view path = target.substr(0, target.find('?'));
    return path == "/" || path == kFinancePath || path == kStaticPrefix.substr(0, kStaticPrefix.size() - 1) ||
           path.substr(0, kStaticPrefix.size()) == kStaticPrefix;
}

Response StaticFiles::Serve(std::string_view method, std::string_view target) const {
    TALLY_ASSERT(Handles(target));
    const std::string_view path = target.substr(0, target.find('?'));
    Response r;
    const bool page = path == "/" || path == kFinancePath;
    r.route = page ? std::string(path) : "/static/{path}";
    // The raw path, not decoded: only a plain name can match a file.
    const std::string_view name = path == "/"          ? std::string_view("index.html")
                                  : path == kFinancePath ? std::string_view("finance.html")
                                                         : path.substr(kStaticPrefix.size() - 1);
    const std::string_view file = name.empty() || name.front() != '/' ? name : name.substr(1);
    const auto found = PlainPath(file) ? files_.find(file) : files_.end();
    if (found == files_.end()) {
        Response missing = ErrorResponse(NotFound());
        missing.route = r.route;
        return missing;
    }
    if (method != "GET") {
        Response wrong =
            ErrorResponse(HttpError(405, "method_not_allowed", "this path does not take " + std::string(method)));
        wrong.route = r.route;
        wrong.headers.emplace_back("Allow", "GET");
        return wrong;
    }
    r.content_type = found->second.content_type;
    r.body = found->second.body;
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
}

std::vector<std::string> StaticFiles::Paths() const {
    std::vector<std::string> out;
    for (const auto& [path, file] : files_) out.push_back(path);
    return out;
}

const std::vector<std::pair<std::string_view, std::string_view>>& StaticRoutes() {
    static const std::vector<std::pair<std::string_view, std::string_view>> routes = {
        {"GET", "/"},
        {"GET", "/finance"},
        {"GET", "/static/{path}"},
    };
    return routes;
}

}  // namespace tally::api

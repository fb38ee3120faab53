// The web pages of `tally serve` (api/static_files.h): what is served, with
// which type and headers, and that nothing else is: traversal in every
// spelling is a 404, without a key and without touching the database.
#include "api/static_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace tally::api {
namespace {

namespace fs = std::filesystem;

// A database that must never be asked: the pages need none.
class NoBackend : public Backend {
   public:
    std::optional<ledger::Principal> Authenticate(std::string_view) override { throw std::logic_error("Authenticate"); }
    std::string NotReady() override { throw std::logic_error("NotReady"); }
    UsageReport Usage(const UsageQuery&) override { throw std::logic_error("Usage"); }
    std::vector<billing::InvoiceDocument> Invoices(const InvoiceQuery&) override { throw std::logic_error("Invoices"); }
    std::optional<billing::InvoiceDocument> Invoice(const std::string&) override { throw std::logic_error("Invoice"); }
    std::string Pdf(const billing::InvoiceDocument&) override { throw std::logic_error("Pdf"); }
    std::string Csv(const billing::InvoiceDocument&) override { throw std::logic_error("Csv"); }
};

void Write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

class StaticFilesTest : public ::testing::Test {
   protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() /
                ("tally_static_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root_);
        Write(root_ / "web" / "index.html", "<!doctype html><title>t</title>");
        Write(root_ / "web" / "finance.html", "<!doctype html><title>finance</title>");
        Write(root_ / "web" / "app.js", "console.log(1);");
        Write(root_ / "web" / "vendor" / "u.min.css", ".u{}");
        Write(root_ / "web" / "notes.md", "not a served type");
        Write(root_ / "web" / ".hidden.js", "hidden");
        Write(root_ / "web" / "sub dir" / "x.js", "a space in the path");
        Write(root_ / "secret.txt", "outside the web directory");
        fs::create_symlink(root_ / "secret.txt", root_ / "web" / "link.txt");
    }
    void TearDown() override { fs::remove_all(root_); }

    Response Get(std::string_view target, std::string_view method = "GET") {
        Service service(ServiceOptions{}, StaticFiles::Load((root_ / "web").string()));
        NoBackend backend;
        Request r;
        r.method = method;
        r.target = target;
        std::string internal;
        Response out = service.Handle(r, backend, "1", &internal);
        EXPECT_EQ(internal, "") << target;
        return out;
    }

    fs::path root_;
};

TEST_F(StaticFilesTest, LoadsOnlyPlainFilesOfKnownTypes) {
    const auto pages = StaticFiles::Load((root_ / "web").string());
    EXPECT_EQ(pages->Paths(), (std::vector<std::string>{"app.js", "finance.html", "index.html", "vendor/u.min.css"}));
}

TEST_F(StaticFilesTest, ServesIndexAndFilesWithTheirTypeWithoutAKey) {
    Response r = Get("/");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(r.body, "<!doctype html><title>t</title>");
    EXPECT_EQ(r.route, "/");
    r = Get("/static/app.js");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(r.body, "console.log(1);");
    EXPECT_EQ(r.route, "/static/{path}");
    r = Get("/static/vendor/u.min.css?v=1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/css; charset=utf-8");
    EXPECT_EQ(Get("/static/index.html").status, 200);
}

TEST_F(StaticFilesTest, FinanceIsTheFinancePage) {
    Response r = Get("/finance");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(r.body, "<!doctype html><title>finance</title>");
    EXPECT_EQ(r.route, "/finance");
    r = Get("/finance?period=2025-11");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "<!doctype html><title>finance</title>");
    // Any other spelling is not the page: a 404, or a 400 from the API's
    // target parser (a trailing '/', an encoded '/', a dot segment).
    for (const char* target : {"/finance.html", "/Finance", "/finances", "/static/finance"}) {
        EXPECT_EQ(Get(target).status, 404) << target;
    }
    for (const char* target : {"/finance/", "/finance%2f", "/finance/../index.html"}) {
        const Response other = Get(target);
        EXPECT_TRUE(other.status == 404 || other.status == 400) << target << ": " << other.status;
        EXPECT_NE(other.body, "<!doctype html><title>finance</title>") << target;
    }
    r = Get("/finance", "POST");
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.route, "/finance");
    // Without web/finance.html the path is a 404, like any missing file.
    fs::remove(root_ / "web" / "finance.html");
    r = Get("/finance");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"no such resource"}})");
}

TEST_F(StaticFilesTest, EverythingElseIsANotFound) {
    for (const char* target : {"/static/",
                               "/static",
                               "/static/vendor",
                               "/static/vendor/",
                               "/static/notes.md",
                               "/static/.hidden.js",
                               "/static/link.txt",
                               "/static/../secret.txt",
                               "/static/vendor/../app.js",
                               "/static/%2e%2e/secret.txt",
                               "/static/%2E%2E/secret.txt",
                               "/static/..%2fsecret.txt",
                               "/static/vendor%2fu.min.css",
                               "/static/app.js%00",
                               "/static/app.js%00.png",
                               "/static/vendor\\u.min.css",
                               "/static/..\\secret.txt",
                               "/static//app.js",
                               "/static/./app.js",
                               "/static/sub%20dir/x.js",
                               "/static/sub dir/x.js",
                               "/static/APP.JS",
                               "/static/app.js/"}) {
        const Response r = Get(target);
        EXPECT_EQ(r.status, 404) << target;
        EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"no such resource"}})") << target;
    }
    std::string with_nul = "/static/app.js";
    with_nul.push_back('\0');
    EXPECT_EQ(Get(with_nul).status, 404);
    EXPECT_EQ(Get("/index.html").status, 404);  // only under /static, and "/"
}

TEST_F(StaticFilesTest, OnlyGet) {
    const Response r = Get("/static/app.js", "POST");
    EXPECT_EQ(r.status, 405);
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Allow", "GET"}));
    EXPECT_EQ(Get("/", "DELETE").status, 405);
}

TEST_F(StaticFilesTest, WithoutPagesTheRootIsANotFound) {
    Service service(ServiceOptions{});
    NoBackend backend;
    Request r;
    r.method = "GET";
    r.target = "/";
    std::string internal;
    EXPECT_EQ(service.Handle(r, backend, "1", &internal).status, 404);
}

TEST_F(StaticFilesTest, LoadFailsClearly) {
    try {
        StaticFiles::Load((root_ / "nope").string());
        FAIL() << "a missing directory must throw";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("nope: not a directory"), std::string::npos) << e.what();
    }
    fs::remove(root_ / "web" / "index.html");
    try {
        StaticFiles::Load((root_ / "web").string());
        FAIL() << "no index.html must throw";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("no index.html"), std::string::npos) << e.what();
    }
}

TEST(StaticFilesTypes, KnownExtensionsOnly) {
    EXPECT_EQ(StaticFiles::ContentTypeOf("a.svg"), "image/svg+xml");
    EXPECT_EQ(StaticFiles::ContentTypeOf("a.png"), "image/png");
    EXPECT_EQ(StaticFiles::ContentTypeOf("LICENSE"), "");
    EXPECT_EQ(StaticFiles::ContentTypeOf(".js"), "");
    EXPECT_EQ(StaticFiles::ContentTypeOf("a.json"), "");
}

}  // namespace
}  // namespace tally::api

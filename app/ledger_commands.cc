#include <iostream>

#include "app/commands.h"
#include "app/with_database.h"
#include "ledger/store.h"

namespace tally {

namespace {

// Runs `body` against the ledger's Store, turning failures into exit codes.
template <typename Body>
int WithStore(const char* command, const std::string& url_flag, std::ostream& err, Body body) {
    return WithDatabase(command, url_flag, err, [&](const std::string& url) {
        ledger::Store store(url);
        return body(store);
    });
}

}  // namespace

int RunPlanPublish(const std::vector<std::string>& files, const std::string& url, std::ostream& out,
                   std::ostream& err) {
    return WithStore("plan publish", url, err, [&](ledger::Store& store) {
        const int failures = ForEachFile(files, err, [&](const std::string& file, const std::string& text) {
            Diagnostics diagnostics;
            auto r = store.PublishPlan(text, file, &diagnostics);
            for (const auto& d : diagnostics) err << d.ToString() << "\n";
            if (!r) return false;
            out << file << ": plan " << r->plan << ": " << r->published.size() << " published, " << r->unchanged.size()
                << " already published\n";
            return true;
        });
        return failures == 0 ? kExitOk : kExitFailure;
    });
}

int RunCustomerAdd(const std::string& id, const std::string& name, const std::string& url, std::ostream& out,
                   std::ostream& err) {
    return WithStore("customer add", url, err, [&](ledger::Store& store) {
        store.AddCustomer(id, name);
        out << "customer " << id << (name.empty() ? "" : " (" + name + ")") << " added\n";
        return kExitOk;
    });
}

int RunSubscribe(const std::string& id, const std::string& plan, const std::string& from, const std::string& terms_file,
                 const std::string& url, std::ostream& out, std::ostream& err) {
    std::string terms, error;
    if (!terms_file.empty() && !ReadFile(terms_file, &terms, &error)) {
        err << "tally: " << error << "\n";
        return kExitFailure;
    }
    return WithStore("subscribe", url, err, [&](ledger::Store& store) {
        store.Subscribe(id, plan, from, terms);
        out << "customer " << id << " is on plan " << plan << " from " << from << "\n";
        return kExitOk;
    });
}

int RunCustomerImport(const std::string& file, const std::string& from, const std::string& url, std::ostream& out,
                      std::ostream& err) {
    std::string text, error;
    if (!ReadFile(file, &text, &error)) {
        err << "tally: " << error << "\n";
        return kExitFailure;
    }
    return WithStore("customer import", url, err, [&](ledger::Store& store) {
        Diagnostics diagnostics;
        auto n = store.ImportSubscriptions(text, file, from, &diagnostics);
        for (const auto& d : diagnostics) err << d.ToString() << "\n";
        if (!n) return kExitFailure;
        out << file << ": " << *n << " subscriptions (customers, plans and contract terms)\n";
        return kExitOk;
    });
}

}  // namespace tally

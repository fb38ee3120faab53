#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "app/commands.h"
#include "app/with_database.h"
#include "base/assert.h"
#include "ledger/store.h"
#include "pricing/plan_diff.h"
#include "pricing/plan_yaml.h"

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

int RunPlanPublishDryRun(const std::vector<std::string>& files, const std::string& url, std::ostream& out,
                         std::ostream& err) {
    return WithStore("plan publish --dry-run", url, err, [&](ledger::Store& store) {
        const ingest::CatalogSnapshot published = store.Load();
        const Instant now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
        const int failures = ForEachFile(files, err, [&](const std::string& file, const std::string& text) {
            Diagnostics diagnostics;
            // The publish's own checks, in a transaction that is not committed.
            std::optional<ledger::PublishResult> r;
            try {
                r = store.PublishPlan(text, file, &diagnostics, /*dry_run=*/true);
            } catch (const ledger::LedgerError& e) {
                // A published version with another body: the publish would be
                // refused; say so and go on with the other files.
                err << file << ": the publish would be refused: " << e.what() << "\n";
                return false;
            }
            for (const auto& d : diagnostics) err << d.ToString() << "\n";
            if (!r) return false;
            // As the publish parsed it: against the published plans (a
            // version may extend a published one).
            UnitTable units = published.catalog.units;
            Diagnostics again;
            auto plan = ParsePlan(text, file, &units, &again, &published.catalog);
            TALLY_ASSERT(plan.has_value());
            out << file << ": plan " << r->plan << ": would publish " << r->published.size() << " new version(s)";
            for (size_t i = 0; i < r->published.size(); ++i) out << (i == 0 ? " (" : ", ") << r->published[i];
            out << (r->published.empty() ? "" : ")") << "; " << r->unchanged.size() << " already published";
            for (size_t i = 0; i < r->unchanged.size(); ++i) out << (i == 0 ? " (" : ", ") << r->unchanged[i];
            out << (r->unchanged.empty() ? "" : ")") << "\n";
            // Customers: every customer with a subscription naming the plan,
            // and those whose subscription in force now names it.
            std::set<std::string> named;
            std::map<std::string, const Subscription*> current;
            for (const Subscription& s : published.subscriptions) {
                if (s.plan == r->plan) named.insert(s.customer);
                const Instant from = s.from.value_or(Instant::min());
                if (from > now) continue;
                const Subscription*& c = current[s.customer];
                if (c == nullptr || c->from.value_or(Instant::min()) <= from) c = &s;
            }
            size_t in_force = 0;
            for (const auto& [customer, s] : current) in_force += s->plan == r->plan ? 1u : 0u;
            out << "  customers on plan " << r->plan << ": " << named.size() << " with a subscription naming it, "
                << in_force << " of them on it now (" << FormatRfc3339(now) << ")\n";
            const Plan* old = published.catalog.FindPlan(r->plan);
            for (const std::string& id : r->published) {
                const PlanVersion* v = nullptr;
                for (const PlanVersion& x : plan->versions) {
                    if (x.id == id) v = &x;
                }
                TALLY_ASSERT(v != nullptr);
                // The version in force just before it once published: the
                // latest earlier one, published or of this file.
                const PlanVersion* before = nullptr;
                const UnitTable* before_units = nullptr;
                std::string before_source;
                auto consider = [&](const PlanVersion& x, const UnitTable& u, const char* source) {
                    if (x.effective_from >= v->effective_from) return;
                    if (before == nullptr || x.effective_from > before->effective_from) {
                        before = &x;
                        before_units = &u;
                        before_source = source;
                    }
                };
                if (old != nullptr) {
                    for (const PlanVersion& x : old->versions) consider(x, published.catalog.units, "published");
                }
                for (const PlanVersion& x : plan->versions) consider(x, units, "in this file, new");
                out << "\n  new version " << id << " from " << FormatRfc3339(v->effective_from);
                if (before == nullptr) {
                    out << ": the plan's first version, nothing to compare with\n";
                    continue;
                }
                out << " against version " << before->id << " (" << before_source << "):\n";
                const PlanVersionDiff diff = DiffPlanVersions(*before, *before_units, *v, units);
                std::ostringstream table;
                WritePlanDiffTable(table, diff, v->currency);
                std::istringstream lines(table.str());
                for (std::string line; std::getline(lines, line);) out << "  " << line << "\n";
            }
            return true;
        });
        out << "dry run: nothing was written";
        if (failures > 0) out << " (" << failures << " file(s) would fail)";
        out << "\n";
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

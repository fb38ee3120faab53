#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "app/commands.h"
#include "base/assert.h"
#include "pricing/plan_diff.h"
#include "pricing/plan_yaml.h"

namespace tally {

bool ReadFile(const std::string& path, std::string* text, std::string* error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        *error = path + ": cannot open the file (does it exist, and may this user read it?)";
        return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) {
        *error = path + ": read error";
        return false;
    }
    *text = ss.str();
    return true;
}

int ForEachFile(const std::vector<std::string>& files, std::ostream& err,
                const std::function<bool(const std::string& file, const std::string& text)>& use) {
    int failures = 0;
    for (const auto& file : files) {
        std::string text, error;
        if (!ReadFile(file, &text, &error)) {
            err << "tally: " << error << "\n";
            ++failures;
        } else if (!use(file, text)) {
            ++failures;
        }
    }
    return failures;
}

std::optional<Catalog> LoadCatalog(const std::vector<std::string>& files, std::ostream& err) {
    Catalog catalog;
    const int failures = ForEachFile(files, err, [&](const std::string& file, const std::string& text) {
        Diagnostics diagnostics;
        auto plan = ParsePlan(text, file, &catalog.units, &diagnostics);
        for (const auto& d : diagnostics) err << d.ToString() << "\n";
        if (!plan) return false;
        if (catalog.PlanIndex(plan->name) >= 0) {
            err << file << ": error: a plan called '" << plan->name << "' was already loaded from another file\n";
            return false;
        }
        catalog.plans.push_back(std::move(*plan));
        return true;
    });
    if (failures > 0) return std::nullopt;
    return catalog;
}

int RunPlanValidate(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
    const int failures = ForEachFile(files, err, [&](const std::string& file, const std::string& text) {
        UnitTable units;
        Diagnostics diagnostics;
        auto plan = ParsePlan(text, file, &units, &diagnostics);
        for (const auto& d : diagnostics) err << d.ToString() << "\n";
        if (!plan) {
            const size_t errors = CountErrors(diagnostics);
            err << file << ": " << errors << (errors == 1 ? " problem" : " problems")
                << "; the plan cannot be used until they are fixed\n";
            return false;
        }
        // Distinct model names over all versions: a model priced by three
        // versions is one model.
        std::set<std::string> models;
        for (const auto& v : plan->versions) {
            for (const auto& m : v.models) models.insert(m.name);
        }
        out << file << ": ok: plan " << plan->name << ", " << plan->versions.size()
            << (plan->versions.size() == 1 ? " version" : " versions") << " (";
        for (size_t i = 0; i < plan->versions.size(); ++i) {
            const auto& v = plan->versions[i];
            out << (i > 0 ? ", " : "") << v.id << " from " << FormatRfc3339(v.effective_from);
            if (v.effective_until) out << " until " << FormatRfc3339(*v.effective_until);
            if (!v.extends.empty()) out << " extends " << v.extends;
        }
        out << "), " << models.size() << (models.size() == 1 ? " model" : " models");
        const size_t warnings = diagnostics.size() - CountErrors(diagnostics);
        if (warnings > 0) out << ", " << warnings << (warnings == 1 ? " warning" : " warnings");
        out << "\n";
        // A version written as changes: what it resolves to, as the cells
        // and terms that differ from its base (the whole table is `plan show`).
        for (const auto& v : plan->versions) {
            if (v.extends.empty()) continue;
            auto base = std::find_if(plan->versions.begin(), plan->versions.end(),
                                     [&](const PlanVersion& b) { return b.id == v.extends; });
            TALLY_ASSERT(base != plan->versions.end());  // the parser refuses any other base
            out << "\nversion " << v.id << " resolves to version " << base->id
                << " with these changes (every cell: tally plan show " << file << " --version " << v.id << "):\n";
            WritePlanDiffTable(out, DiffPlanVersions(*base, units, v, units), v.currency);
        }
        return true;
    });
    return failures == 0 ? kExitOk : kExitFailure;
}

}  // namespace tally

#!/usr/bin/env bash
# Money is exact: no float or double on the money path (pricing/, billing/,
# ledger/, documents/, api/, and base/ below them).
#
# The check works on tokens, not on lines: it splices backslash-newlines,
# drops // and /* */ comments and the contents of string and character
# literals (raw strings too), then looks at what is left. So a comment or a
# message that mentions "double" passes, and a comment cannot hide code on
# the same line. It reports:
#   - the types float, double (so long double), _Float32..., __float128;
#   - text-to-float conversions: strtod, strtof, strtold, stod, stof, stold,
#     atof, wcstod...;
#   - <cmath> functions that return a floating value, written std::floor or
#     ::floor, or called unqualified (floorf, fmod(...), sqrt(...)...),
#     and __builtin_ versions of them; std::chrono::floor is not one;
#   - floating literals (0.5, 1e3, 2.f, 0x1p3);
#   - #include <cmath>, <math.h>, <cfloat>, <float.h>, <tgmath.h>;
#   - accessors of JSON and YAML libraries that return one (get_double...).
# Self-test: tests/tidy/check_no_float_test.sh.
# Exit status: 0 clean, 1 floating point found, 2 usage or wrong directory.
set -u
root=${1:?usage: check_no_float.sh SOURCE_DIR}
[ -d "$root" ] || { echo "no such directory: $root"; exit 2; }
exec python3 - "$root" <<'PY'
import os
import re
import sys

DIRS = ("pricing", "billing", "ledger", "base", "documents", "api")
EXTENSIONS = (".h", ".hh", ".hpp", ".hxx", ".inc", ".ipp", ".c", ".cc", ".cpp", ".cxx")

TYPES = {"float", "double", "float_t", "double_t", "__float128", "__float80", "__ibm128", "__bf16",
         "_Float16", "_Float32", "_Float64", "_Float128", "_Float32x", "_Float64x", "_Float128x"}
PARSERS = {"strtod", "strtof", "strtold", "stod", "stof", "stold", "atof", "wcstod", "wcstof", "wcstold"}
FLOAT_MACROS = {"HUGE_VAL", "HUGE_VALF", "HUGE_VALL", "INFINITY", "NAN"}
# <cmath> functions whose result is floating even for an integer argument.
MATH = {"floor", "ceil", "round", "trunc", "fmod", "fabs", "sqrt", "cbrt", "pow", "exp", "exp2", "expm1",
        "log", "log2", "log10", "log1p", "nearbyint", "rint", "modf", "frexp", "ldexp", "scalbn", "remainder",
        "remquo", "fma", "fmax", "fmin", "fdim", "hypot", "lround", "llround", "lrint", "llrint", "nan"}
MATH_SUFFIXED = {name + suffix for name in MATH for suffix in ("f", "l")}
# Common words that may be our own names; for them only std::x, ::x and the
# suffixed forms count. The other MATH names count as unqualified calls too.
MATH_AMBIGUOUS = {"round", "exp", "log", "remainder", "nan", "fmax", "fmin"}
ACCESSOR = re.compile(r"^(get|as|to)_?(double|float)$", re.IGNORECASE)
INCLUDE = re.compile(r"#\s*include\s*[<\"]\s*(cmath|math\.h|cfloat|float\.h|ctgmath|tgmath\.h)\s*[>\"]")
STRING_PREFIXES = {"L", "u", "U", "u8", "R", "LR", "uR", "UR", "u8R"}


def splice(text):
    """Deletes backslash-newlines (translation phase 2); returns the text
    and, for each of its characters, the line it came from."""
    chars, lines = [], []
    line, i, n = 1, 0, len(text)
    while i < n:
        if text[i] == "\\" and text.startswith("\n", i + 1):
            i, line = i + 2, line + 1
            continue
        if text[i] == "\\" and text.startswith("\r\n", i + 1):
            i, line = i + 3, line + 1
            continue
        chars.append(text[i])
        lines.append(line)
        if text[i] == "\n":
            line += 1
        i += 1
    return "".join(chars), lines


def skip_literal(s, i, raw):
    """s[i] opens a string or character literal; returns the index after it."""
    n = len(s)
    if raw:
        open_paren = s.find("(", i + 1)
        if open_paren < 0:
            return n
        close = s.find(")" + s[i + 1:open_paren] + '"', open_paren)
        return n if close < 0 else close + len(s[i + 1:open_paren]) + 2
    quote, j = s[i], i + 1
    while j < n:
        if s[j] == "\\":
            j += 2
        elif s[j] == quote:
            return j + 1
        elif s[j] == "\n":  # unterminated: stop at the end of the line
            return j
        else:
            j += 1
    return n


def tokens(s):
    """Yields (kind, text, offset) of identifiers, numbers and punctuators;
    comments and literals yield nothing. Directives are marked 'directive'."""
    i, n = 0, len(s)
    line_start = True
    while i < n:
        c = s[i]
        if c == "\n":
            line_start, i = True, i + 1
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if s.startswith("//", i):
            end = s.find("\n", i)
            i = n if end < 0 else end
            continue
        if s.startswith("/*", i):
            end = s.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        at_line_start, line_start = line_start, False
        if c == "#" and at_line_start:
            end = s.find("\n", i)
            yield ("directive", s[i:n if end < 0 else end], i)
            i += 1
            continue
        if c.isdigit() or (c == "." and i + 1 < n and s[i + 1].isdigit()):
            j = i + 1
            while j < n:
                if s[j] in "eEpP" and j + 1 < n and s[j + 1] in "+-":
                    j += 2
                elif s[j].isalnum() or s[j] in "_.":
                    j += 1
                elif s[j] == "'" and j + 1 < n and s[j + 1].isalnum():  # digit separator
                    j += 2
                else:
                    break
            yield ("number", s[i:j], i)
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i
            while j < n and (s[j].isalnum() or s[j] == "_"):
                j += 1
            word = s[i:j]
            if j < n and s[j] in "\"'" and word in STRING_PREFIXES:
                i = skip_literal(s, j, raw=word.endswith("R") and s[j] == '"')
                continue
            yield ("ident", word, i)
            i = j
            continue
        if c in "\"'":
            i = skip_literal(s, i, raw=False)
            continue
        if s.startswith("::", i) or s.startswith("->", i):
            yield ("punct", s[i:i + 2], i)
            i += 2
            continue
        yield ("punct", c, i)
        i += 1


def is_floating_literal(number):
    digits = number.replace("'", "").lower()
    if digits.startswith("0x"):
        return "." in digits or "p" in digits
    mantissa = re.match(r"[0-9.]*(e[-+]?[0-9]*)?", digits).group(0)
    return "." in mantissa or "e" in mantissa


def judge(toks, k):
    """Why token k is floating point on the money path, or None."""
    kind, text, _ = toks[k]
    if kind == "directive":
        return "includes a floating-point header" if INCLUDE.match(text) else None
    if kind == "number":
        return "floating literal " + text if is_floating_literal(text) else None
    if kind != "ident":
        return None
    before = [t[1] for t in toks[max(0, k - 3):k]]
    before = [""] * (3 - len(before)) + before
    after = toks[k + 1][1] if k + 1 < len(toks) else ""
    if text in TYPES:
        return "floating type " + text
    if text in PARSERS or text in FLOAT_MACROS:
        return text + " yields a floating value"
    if text in ("cmath", "cfloat", "ctgmath") and before[2] == "<":
        return "includes a floating-point header"
    if ACCESSOR.match(text):
        return text + " returns a floating value"
    math = text[len("__builtin_"):] if text.startswith("__builtin_") else text
    if math in MATH or math in MATH_SUFFIXED:
        qualified_std = before[2] == "::" and before[1] == "std"
        qualified_global = before[2] == "::" and not re.match(r"^\w+$|^>$", before[1])
        unqualified_call = after == "(" and before[2] not in (".", "->", "::")
        if (text.startswith("__builtin_") or qualified_std or qualified_global or math in MATH_SUFFIXED
                or (unqualified_call and math not in MATH_AMBIGUOUS)):
            return text + " is floating-point math"
    return None


def check_file(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        original = f.read()
    text, lines = splice(original)
    source_lines = original.split("\n")
    toks = list(tokens(text))
    hits = []
    for k in range(len(toks)):
        why = judge(toks, k)
        if why:
            line = lines[toks[k][2]] if toks[k][2] < len(lines) else len(source_lines)
            hits.append("%s:%d: %s: %s" % (path, line, why, source_lines[line - 1].strip()))
    return hits


def main(root):
    os.chdir(root)
    dirs = [d for d in DIRS if os.path.isdir(d)]
    if not dirs:
        print("none of %s under %s: wrong directory?" % ("/, ".join(DIRS) + "/", root))
        return 2
    files = []
    for d in dirs:
        for parent, subdirs, names in os.walk(d):
            subdirs.sort()
            files += [os.path.join(parent, n) for n in sorted(names) if n.endswith(EXTENSIONS)]
    if not files:
        print("no C++ sources in %s: wrong directory?" % ", ".join(dirs))
        return 2
    hits = [hit for path in files for hit in check_file(path)]
    if hits:
        print("floating point on the money path:")
        print("\n".join(hits))
        return 1
    print("no floating point in %s (%d files checked)" % (", ".join(d + "/" for d in dirs), len(files)))
    return 0


sys.exit(main(sys.argv[1]))
PY

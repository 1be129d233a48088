#!/usr/bin/env python3
"""Checks the Grafana dashboard(s) of deploy/grafana against the gateway's metric names.

Usage:
    python3 deploy/grafana/check_dashboard.py NAMES_FILE [DASHBOARD.json ...] [--promtool PATH]

NAMES_FILE lists the metric names the gateway exposes, one a line (blank lines and lines
starting with '#' are skipped; only a line's first word counts, up to any '{'). A
histogram may be listed by its base name: <name>_bucket, <name>_sum and <name>_count are
then accepted too. Without DASHBOARD, every *.json beside this script is checked.

It asserts, and names each problem that it finds:
  - the file is valid JSON;
  - there is a template variable `datasource` of type datasource, query prometheus, with
    no data source uid saved as its current value;
  - every datasource reference anywhere (panels, targets, variables, annotations) is
    {"type": "prometheus", "uid": "${datasource}"}: no literal uid nor name;
  - every panel has a datasource, a description and queries with an expr and distinct
    refIds (rows: no queries), and panel ids are distinct;
  - every metric name in every PromQL expression (panel targets, annotations, query
    variables) is in NAMES_FILE;
  - every $variable used is a template variable of the dashboard or one of Grafana's own;
  - with --promtool: every expression parses (promtool check rules on a throwaway rules
    file, Grafana's variables replaced by plain values).

Exits 0 when there is no problem, 1 otherwise, 2 on a usage error. Standard library only.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Words of PromQL that are not metric names (matched case-sensitively, as PromQL does,
# except inf and nan, which any case spells).
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "atan2",
    # Aggregation operators: they may be followed by `by (...)` instead of `(`.
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
TOKEN = re.compile(r"\s+|(?P<number>\.?\d[\w.]*)|(?P<ident>[A-Za-z_:][\w:]*)|(?P<other>.)")
LABEL_VALUES = re.compile(r"^\s*label_values\s*\((?P<args>.*)\)\s*$", re.S)
QUERY_RESULT = re.compile(r"^\s*query_result\s*\((?P<expr>.*)\)\s*$", re.S)


def metric_names(expr):
    """The metric names an expression selects, in order of first use."""
    text = STRING.sub('""', expr)
    text = re.sub(r"#[^\n]*", "", text)
    text = VARIABLE.sub("0", text)
    text = re.sub(r"\{[^{}]*\}", "", text)
    text = re.sub(r"\[[^\[\]]*\]", "", text)
    text = GROUPING.sub(" ", text)
    tokens = [m for m in TOKEN.finditer(text) if m.lastgroup]
    names = []
    for i, token in enumerate(tokens):
        if token.lastgroup != "ident":
            continue
        word = token.group()
        if word in KEYWORDS or word.lower() in ("inf", "nan"):
            continue
        following = tokens[i + 1].group() if i + 1 < len(tokens) else ""
        if following == "(":
            continue  # a function call
        if word not in names:
            names.append(word)
    return names


def variables_used(expr):
    return {next(g for g in m.groups() if g) for m in VARIABLE.finditer(expr)}


def load_names(path):
    names = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            names.add(line.split()[0].split("{")[0])
    return names


def known(name, names):
    if name in names:
        return True
    return any(name.endswith(s) and name[: -len(s)] in names for s in HISTOGRAM_SUFFIXES)


def panel_label(panel, index):
    return f'panel {panel.get("id", index)} "{panel.get("title", "")}"'


def all_panels(dashboard):
    """(label, panel) for every panel, those inside collapsed rows included."""
    out = []
    for i, panel in enumerate(dashboard.get("panels") or []):
        out.append((panel_label(panel, i), panel))
        for j, inner in enumerate(panel.get("panels") or []):
            out.append((panel_label(inner, f"{i}.{j}"), inner))
    return out


def walk_datasources(node, where, problems):
    """Every "datasource" key anywhere must be the ${datasource} variable."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else key
            if key == "datasource":
                if value != DATASOURCE:
                    problems.append(
                        f"{here}: datasource is {json.dumps(value)}, "
                        f"not {json.dumps(DATASOURCE)}")
            else:
                walk_datasources(value, here, problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if where.endswith("panels") and isinstance(value, dict):
                inside = where[: -len("panels")].rstrip(".")
                label = panel_label(value, i)
                here = f"{inside} > {label}" if inside else label
            else:
                here = f"{where}[{i}]"
            walk_datasources(value, here, problems)


def variable_query(variable):
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    return query if isinstance(query, str) else ""


def expressions(dashboard, problems):
    """(where, expr) of every PromQL expression of the dashboard."""
    out = []
    for label, panel in all_panels(dashboard):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if isinstance(expr, str) and expr.strip():
                out.append((f'{label} target {target.get("refId", "?")}', expr))
    for i, annotation in enumerate((dashboard.get("annotations") or {}).get("list") or []):
        where = f'annotation "{annotation.get("name", i)}"'
        for expr in (annotation.get("expr"), (annotation.get("target") or {}).get("expr")):
            if isinstance(expr, str) and expr.strip():
                out.append((where, expr))
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") != "query":
            continue
        where = f'variable "{variable.get("name")}"'
        query = variable_query(variable)
        match = LABEL_VALUES.match(query) or QUERY_RESULT.match(query)
        if not query:
            problems.append(f"{where}: no query")
        elif match and "args" in match.groupdict():
            args = match.group("args")
            if "," in args:  # label_values(series, label); label_values(label) has none
                out.append((where, args.rsplit(",", 1)[0]))
        elif match:
            out.append((where, match.group("expr")))
        else:
            problems.append(f"{where}: query {query!r} is neither label_values() "
                            "nor query_result()")
    return out


def check_structure(dashboard, problems):
    variables = (dashboard.get("templating") or {}).get("list") or []
    ds_vars = [v for v in variables if v.get("name") == "datasource"]
    if not ds_vars:
        problems.append('templating: no variable "datasource"')
    for variable in ds_vars:
        if variable.get("type") != "datasource" or variable.get("query") != "prometheus":
            problems.append('variable "datasource": must be type datasource, '
                            'query prometheus')
        current = (variable.get("current") or {}).get("value")
        if isinstance(current, list):
            current = current[0] if current else ""
        if current and not str(current).startswith("$"):
            problems.append(f'variable "datasource": current value {current!r} is a '
                            "literal data source uid (clear \"current\")")
    seen_ids = {}
    for label, panel in all_panels(dashboard):
        if "id" in panel:
            if panel["id"] in seen_ids:
                problems.append(f"{label}: id {panel['id']} also used by "
                                f"{seen_ids[panel['id']]}")
            seen_ids[panel["id"]] = label
        if "gridPos" not in panel:
            problems.append(f"{label}: no gridPos")
        targets = panel.get("targets") or []
        if panel.get("type") == "row":
            if targets:
                problems.append(f"{label}: a row with queries")
            continue
        if "datasource" not in panel:
            problems.append(f"{label}: no datasource (Grafana would use its default)")
        if not str(panel.get("description") or "").strip():
            problems.append(f"{label}: no description")
        if not targets:
            problems.append(f"{label}: no queries")
        ref_ids = set()
        for i, target in enumerate(targets):
            ref = target.get("refId")
            if not ref or ref in ref_ids:
                problems.append(f"{label} target {i}: missing or repeated refId {ref!r}")
            ref_ids.add(ref)
            if "datasource" not in target:
                problems.append(f"{label} target {ref}: no datasource")
            if not str(target.get("expr") or "").strip():
                problems.append(f"{label} target {ref}: no expr")


def promtool_check(exprs, promtool, problems):
    """Parses every expression with promtool, as recording rules of a throwaway file."""
    def plain(match):
        name = next(g for g in match.groups() if g)
        return {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}.get(
            name, "1" if name.startswith("__") else ".*")

    rules, where_of = [], {}
    for i, (where, expr) in enumerate(exprs):
        record = f"dashboard_expr_{i}"
        where_of[record] = (where, expr)
        rules.append({"record": record, "expr": VARIABLE.sub(plain, expr)})
    # JSON is YAML: promtool reads it as a rules file.
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, handle)
        path = handle.name
    try:
        run = subprocess.run([promtool, "check", "rules", path],
                             capture_output=True, text=True, check=False)
    except OSError as error:
        problems.append(f"promtool {promtool!r} could not run: {error}")
        return
    finally:
        os.unlink(path)
    if run.returncode != 0:
        output = (run.stdout + run.stderr).replace(path, "<dashboard expressions>")
        named = [r for r in where_of if re.search(rf'"{r}"', output)]
        for record in named:
            where, expr = where_of[record]
            problems.append(f"{where}: promtool cannot parse {expr!r}")
        if not named:
            problems.append("promtool check rules failed:\n" + output.strip())


def check(path, names, promtool):
    problems = []
    try:
        with open(path, encoding="utf-8") as handle:
            dashboard = json.load(handle)
    except (OSError, ValueError) as error:
        return [f"not valid JSON: {error}"], 0
    if not isinstance(dashboard, dict):
        return ["not a dashboard: the top level is not an object"], 0
    check_structure(dashboard, problems)
    walk_datasources(dashboard, "", problems)
    defined = {v.get("name") for v in (dashboard.get("templating") or {}).get("list") or []}
    exprs = expressions(dashboard, problems)
    for where, expr in exprs:
        names_used = metric_names(expr)
        if not names_used:
            problems.append(f"{where}: no metric name in {expr!r}")
        for name in names_used:
            if not known(name, names):
                problems.append(f"{where}: metric {name!r} is not in the names file")
        for variable in sorted(variables_used(expr)):
            if not variable.startswith("__") and variable not in defined:
                problems.append(f"{where}: variable ${variable} is not defined")
    if promtool:
        promtool_check(exprs, promtool, problems)
    return problems, len(exprs)


def main(argv):
    args, promtool = [], None
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--promtool" and rest:
            promtool = rest.pop(0)
        elif arg.startswith("--promtool="):
            promtool = arg.split("=", 1)[1]
        elif arg in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            args.append(arg)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    names_file, dashboards = args[0], args[1:]
    if not dashboards:
        here = os.path.dirname(os.path.abspath(__file__))
        dashboards = sorted(os.path.join(here, f) for f in os.listdir(here)
                            if f.endswith(".json"))
    try:
        names = load_names(names_file)
    except OSError as error:
        print(f"{names_file}: {error}", file=sys.stderr)
        return 2
    if not names:
        print(f"{names_file}: no metric names", file=sys.stderr)
        return 2
    failed = False
    for path in dashboards:
        problems, count = check(path, names, promtool)
        shown = path if path in args else os.path.relpath(path)
        if problems:
            failed = True
            for problem in problems:
                print(f"{shown}: {problem}", file=sys.stderr)
            print(f"{shown}: {len(problems)} problem(s)", file=sys.stderr)
        else:
            parsed = ", all parsed by promtool" if promtool else ""
            print(f"{shown}: ok ({count} expressions, every metric in "
                  f"{names_file}{parsed})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Differential test input: random expressions (operators, filters, tests, methods, slices) in {{ }}, for and if.
Usage: gen_expr.py SEED COUNT > cases.txt (format of engine_cases.txt)."""
import random, sys
random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
atoms = ["x", "y", "s", "l", "d", "n", "f", "u", "1", "0", "-2", "2.5", "'ab'", "'A b'", "''", "none", "true", "false",
         "[1, 2, 3]", "['b', 'a', 'C']", "{'k': 1, 'j': 'v'}", "(1, 'a')", "msgs", "msgs[0]", "msgs[-1]", "'  pad '", "' x,y ,z'",
         "'\\u00e9t\\u00e9'", "3", "7", "1.0", "1e-07", "'<think>a</think>b'", "d.k", "l[0]", "s[1:]",
         "'\\u3000x\\u00a0'", "'stra\\u00dfe \\u01c5x'", "'a\\nb\\r\\nc'", "'12'", "' 3.5 '", "'x-y z(w'", "dict(a=1)", "range(3)", "u2",
         "'{}-{}'", "'%s'", "-0.0", "1e16", "123456789.123"]
bins = [" + ", " - ", " * ", " / ", " // ", " % ", " ** ", " ~ ", " == ", " != ", " < ", " >= ", " in ", " not in ", " and ", " or "]
posts = [".upper()", ".lower()", ".strip()", ".strip('a')", ".lstrip()", ".rstrip('x ')", ".split()", ".split(',')", ".split(',', 1)",
         ".startswith('a')", ".endswith('b')", ".replace('a', 'X')", ".title()", ".capitalize()", ".count('a')", ".find('b')",
         ".items()", ".keys()", ".values()", ".get('k')", ".get('zz', 5)", "[0]", "[-1]", "[1:]", "[::-1]", "[:2]", "[::2]", ".content", ".role", "['role']",
         "|length", "|tojson", "|trim", "|string", "|first", "|last", "|list", "|sort", "|reverse|list", "|join(',')", "|upper", "|lower",
         "|default('D')", "|default('D', true)", "|int", "|float", "|abs", "|unique|list", "|items|list", "|dictsort", "|capitalize", "|title",
         "|map(attribute='role')|list", "|selectattr('role', 'equalto', 'user')|list", "|rejectattr('content')|list", "|select('odd')|list",
         "|tojson(indent=2)", "|round(1)", "|max", "|min", "|sum", "|count", "|replace('a', 'b')",
         " is defined", " is none", " is string", " is number", " is integer", " is float", " is mapping", " is iterable", " is sequence",
         " is odd", " is even", " is divisibleby 3", " is true", " is false", " is boolean", " is not none", " is in [1, 'ab']",
         ".splitlines()", ".rsplit(',', 1)", ".split(none, 1)", ".format(1, 2)", ".isdigit()", ".isspace()", ".isupper()", ".zfill(3)",
         "|indent(2)", "|wordcount", "|e", "|lower|title", " is lower", " is upper", " is callable", "|string|length", "|batch(2)|list",
         "|tojson(sort_keys=true)", "|dictsort(by='value')", "|sort(attribute='role')", "|unique(attribute='role')|list", "|join(attribute='role')",
         "|map('string')|list", "|map('upper')|join", "|min(attribute='role')", "|sum(attribute='x')", "|int(base=16)", "|float(1.5)"]
def expr(d):
    r = random.random()
    if d > 3 or r < 0.3:
        return random.choice(atoms)
    if r < 0.55:
        return "(" + expr(d+1) + random.choice(bins) + expr(d+1) + ")"
    if r < 0.85:
        return "(" + expr(d+1) + ")" + random.choice(posts)
    if r < 0.92:
        return "(" + expr(d+1) + " if " + expr(d+1) + " else " + expr(d+1) + ")"
    return "(not " + expr(d+1) + ")"
VARS = '{"u2": "\\u00c9cole \\u0130 \\u00df", "x": 5, "y": -3, "s": "Hello, World", "l": [3, 1, 2], "d": {"k": "v", "b": 2}, "n": null, "f": 0.5, "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "extra": [1.5, null]}]}'
out = []
for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 2000):
    k = random.random()
    if k < 0.6:
        t = "{{ " + expr(0) + " }}"
    elif k < 0.8:
        t = "{% for i in " + expr(0) + " %}{{ loop.index }}:{{ i }};{% else %}E{% endfor %}"
    else:
        t = "{% if " + expr(0) + " %}T{% else %}F{% endif %}"
    out.append(t + "\n----\n" + VARS)
print("\n====\n".join(out))

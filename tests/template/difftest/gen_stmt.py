#!/usr/bin/env python3
"""Differential test input: random statements: set, namespace, for/else with break/continue and filters, if/elif, macros, block set (scoping).
Usage: gen_stmt.py SEED COUNT > cases.txt (format of engine_cases.txt)."""
import random, sys
random.seed(int(sys.argv[1]))
vals = ["x", "y", "ns.a", "i", "loop.index", "loop.index0", "loop.revindex", "loop.first", "loop.last", "loop.length", "loop.previtem", "loop.nextitem", "1", "'s'", "[1, 2]", "m(2)", "m(y=1)", "k", "v", "undefined_v", "x ~ y", "x + 1", "ns.a * 2", "caller_v"]
def stmt(d):
    r = random.random()
    if d > 3 or r < 0.25:
        return "{{ %s }}" % random.choice(vals)
    if r < 0.4:
        return "{%% set %s = %s %%}" % (random.choice(["x", "y", "ns.a", "k"]), random.choice(vals))
    if r < 0.55:
        it = random.choice(["[1, 2, 3]", "range(4)", "'ab'", "{'p': 1, 'q': 2}", "[]", "x", "[none, 0, 'z']"])
        tgt = "i"
        filt = random.choice(["", "", " if i", " if not loop_v is defined"])
        els = random.choice(["", "{% else %}E"])
        return "{%% for %s in %s%s %%}%s%s{%% endfor %%}" % (tgt, it, filt, block(d+1), els)
    if r < 0.62:
        return "{% for k, v in {'a': 1, 'b': 2}.items() %}" + block(d+1) + "{% endfor %}"
    if r < 0.72:
        return "{%% if %s %%}%s{%% elif %s %%}%s{%% else %%}%s{%% endif %%}" % (random.choice(vals), block(d+1), random.choice(vals), block(d+1), block(d+1))
    if r < 0.8:
        return random.choice(["{% break %}", "{% continue %}"]) if d > 0 else "{{ 'nb' }}"
    if r < 0.84:
        return "{%% set blk %%}%s{%% endset %%}[{{ blk }}]" % block(d+1)
    if r < 0.88:
        return "{%% call(q) w(%s) %%}%s{{ q }}{%% endcall %%}" % (random.choice(vals), block(d+1))
    return "{%% macro m(y, z='d') %%}%s{%% endmacro %%}" % block(d+1)
def block(d):
    return "".join(stmt(d) for _ in range(random.randint(1, 3)))
cases = []
for i in range(int(sys.argv[2])):
    t = "{% set ns = namespace(a=0) %}{% set x = 5 %}{% macro m(y, z='d') %}<{{ y }}{{ z }}{{ x }}>{% endmacro %}{% macro w(a) %}({{ caller(a) }}{{ caller(x) }}){% endmacro %}" + block(0) + "|{{ x }}{{ ns.a }}"
    cases.append(t + "\n----\n{\"y\": 2}")
print("\n====\n".join(cases))
